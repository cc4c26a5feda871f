"""Out-of-core denoising of a Zarr volume larger than it is sensible to hold in memory: time, peak memory, and
equality with the in-memory result.

    PYTHONPATH=src python3 benchmarks/zarr_out_of_core.py                    # ~4 GB: 512 planes of 2048x2048
    PYTHONPATH=src python3 benchmarks/zarr_out_of_core.py --size 0.02 --side 256 --exploratory --out /tmp/z.json
    PYTHONPATH=src python3 benchmarks/zarr_out_of_core.py --method ne2ne-3d --size 0.5 --side 1024 \
        --chunks 8,256,256 --out benchmarks/results/zarr-out-of-core-3d.json       # a model of volumes

A synthetic uint16 ZYX volume (smooth structure, Poisson photon noise plus Gaussian read noise) is written
chunk by chunk into a Zarr store in a temporary folder (``--workdir``; twice ``--size`` GB of disk: input and
output). A small ne2ne model is trained on a few centre crops of its planes by ``selfdenoise train``; then
``selfdenoise denoise vol.zarr -o out.ome.zarr --model ... --axes ZYX`` runs in its own process, whose wall
time and peak resident memory (``wait4``) are recorded. A few planes are then denoised in memory
(``denoise_file`` on them as an NPY stack) and compared with the same planes of the output. With ``--method
ne2ne-3d`` the model is a 3-D one, trained on a centre block of 32 planes, which denoises the store as one
volume, streamed; the in-memory check then denoises the whole volume in memory (in its own process, whose peak
is recorded too), so ``--size`` must fit in memory several times over. Run it alone on the machine. Writes
``benchmarks/results/zarr-out-of-core.json``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile
import zarr
from large_photos import timed

from selfdenoise.bench import write_json
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree

ROOT = Path(__file__).resolve().parent.parent
#: photons at the brightest structure, camera offset and read noise (counts)
PEAK, OFFSET, READ_NOISE = 200.0, 100.0, 3.0


def synthetic_planes(z0: int, z1: int, side: int, seed: int) -> np.ndarray:
    """Planes ``z0:z1`` of the volume: smooth 3-D structure, Poisson + Gaussian noise, uint16 counts."""
    rng = np.random.default_rng([seed, z0])
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    out = np.empty((z1 - z0, side, side), np.uint16)
    for i, z in enumerate(range(z0, z1)):
        signal = 0.15 + 0.85 * (0.5 + 0.5 * np.sin(x / 37.0 + z / 11.0) * np.cos(y / 53.0 - z / 17.0)) ** 2
        counts = rng.poisson(signal * PEAK) + rng.normal(OFFSET, READ_NOISE, signal.shape)
        out[i] = np.clip(np.round(counts), 0, 65535).astype(np.uint16)
    return out


def make_volume(path: Path, planes: int, side: int, chunks: tuple[int, int, int], seed: int) -> zarr.Array:
    z = zarr.create_array(str(path), shape=(planes, side, side), chunks=chunks, dtype="uint16")
    for z0 in range(0, planes, chunks[0]):
        z1 = min(z0 + chunks[0], planes)
        z[z0:z1] = synthetic_planes(z0, z1, side, seed)
    return z


def train_model(volume: zarr.Array, folder: Path, steps: int, method: str = "ne2ne") -> tuple[Path, dict]:
    """``selfdenoise train`` on centre crops of a few planes (ne2ne), or on a centre block of 32 planes (a
    method of volumes); the model path and its run's cost."""
    data = folder / "train"
    data.mkdir()
    planes, side = volume.shape[0], volume.shape[1]
    crop = min(side, 512 if method == "ne2ne" else 256)
    lo = (side - crop) // 2
    axes = []
    if method == "ne2ne":
        for k in np.linspace(0, planes - 1, num=min(8, planes)).astype(int):
            tifffile.imwrite(data / f"plane{k:05d}.tif", volume[k, lo:lo + crop, lo:lo + crop])
    else:
        z0 = max(0, planes // 2 - 16)
        tifffile.imwrite(data / "block.tif", volume[z0:z0 + 32, lo:lo + crop, lo:lo + crop])
        axes = ["--axes", "ZYX"]
    model = folder / "model.sdm"
    cmd = [sys.executable, "-m", "selfdenoise", "train", "-m", method, "--data", str(data), "-o", str(model),
           "--steps", str(steps), "--crop", str(min(64, crop)), "--device", "cpu", "-q", *axes]
    return model, {"command": shlex.join(["selfdenoise", *cmd[3:]]), **timed(cmd)}


def in_memory_check(volume: zarr.Array, output: zarr.Array, model: Path, folder: Path, planes: slice) -> dict:
    """The largest difference between the out-of-core output and ``denoise_file`` on the planes in memory
    (``selfdenoise denoise`` on them as an NPY stack, in its own process: its time and peak are recorded)."""
    np.save(folder / "sub.npy", volume[planes])
    cmd = [sys.executable, "-m", "selfdenoise", "denoise", str(folder / "sub.npy"), "-o", str(folder / "sub_out.npy"),
           "--model", str(model), "--axes", "ZYX", "-q"]
    run = timed(cmd)
    ref = np.load(folder / "sub_out.npy").astype(np.int64)
    diff = int(np.abs(output[planes].astype(np.int64) - ref).max())
    return {"planes": [planes.start, planes.stop], "max_abs_diff_counts": diff,
            "max_abs_diff_unit": diff / 65535.0, "equal_within_1e-5": diff / 65535.0 <= 1e-5,
            "in_memory_run": run}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=float, default=4.0, help="Volume size in GB (uint16).")
    ap.add_argument("--side", type=int, default=2048, help="Plane side in pixels.")
    ap.add_argument("--chunks", default="8,512,512", help="Zarr chunks (Z,Y,X).")
    ap.add_argument("--steps", type=int, default=300, help="Training steps of the model.")
    ap.add_argument("--method", choices=("ne2ne", "ne2ne-3d"), default="ne2ne",
                    help="ne2ne (plane by plane) or a model of volumes (ne2ne-3d, streamed).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None, help="Folder for the temporary stores (default: TMPDIR).")
    ap.add_argument("--exploratory", action="store_true", help="Allow uncommitted changes (results not reported).")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "zarr-out-of-core.json")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=args.exploratory)
    chunks = tuple(int(c) for c in args.chunks.split(","))
    planes = max(chunks[0] + 1, round(args.size * 1e9 / (2 * args.side ** 2)))
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        volume = make_volume(folder / "vol.zarr", planes, args.side, chunks, args.seed)
        model, training = train_model(volume, folder, args.steps, args.method)
        print("trained", training, flush=True)
        cmd = [sys.executable, "-m", "selfdenoise", "denoise", str(folder / "vol.zarr"), "-o",
               str(folder / "out.ome.zarr"), "--model", str(model), "--axes", "ZYX", "-q"]
        run = timed(cmd)
        print("denoised", run, flush=True)
        group = zarr.open_group(str(folder / "out.ome.zarr"), mode="r")
        middle = planes // 2
        whole = args.method != "ne2ne"  # a 3-D model's planes depend on their neighbours: the whole volume
        check = in_memory_check(volume, group["0"], model, folder,
                                slice(0, planes) if whole else slice(middle - 1, middle + 2))
        print("in-memory check", check, flush=True)
    gb = planes * args.side ** 2 * 2 / 1e9
    record = {"what": "out-of-core denoising of a uint16 ZYX Zarr volume with a trained model (selfdenoise denoise)"
                      + ("" if args.method == "ne2ne" else f", a model of volumes ({args.method}), streamed"),
              "split": "test", "split_note": "a synthetic volume drawn for the run; nothing is selected on it",
              "volume": {"shape": [planes, args.side, args.side], "chunks": list(chunks), "dtype": "uint16",
                         "gb": round(gb, 2), "noise": f"Poisson (peak {PEAK:g} photons) + Gaussian read noise "
                                                       f"{READ_NOISE:g} counts, offset {OFFSET:g}"},
              "train": training, "denoise": {"command": shlex.join(["selfdenoise", *cmd[3:]]), **run,
                                             "mb_per_s": round(gb * 1e3 / run["seconds"], 1),
                                             "peak_vs_volume": round(run["peak_gb"] / gb, 3)},
              "in_memory_check": check, **origin(commit, shlex.join(["python3", *sys.argv]))}
    write_json(args.out, record)
    print("->", args.out)
    return 0 if check["equal_within_1e-5"] else 1


if __name__ == "__main__":
    sys.exit(main())
