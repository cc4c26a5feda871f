"""Time and peak memory of `selfdenoise denoise` on 12-MP and 24-MP photos with real camera noise.

    PYTHONPATH=src python3 benchmarks/large_photos.py --data ../shared/data

The photos are mosaics of the PolyU validation photos (real camera noise, 512x512 each, every other one
mirrored), 4032x3024 and 6000x4000, saved as JPEG (quality 95) in a temporary folder. Each command runs in
its own process, as a user runs it; the wall time and that process's peak resident memory (``wait4``) are
recorded. Compared in the same run: scikit-image's fast NLM (``--method nlm``) on the 12-MP photo. Run it
alone on the machine. Writes ``benchmarks/results/large-photos.json``.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from selfdenoise.bench import write_json
from selfdenoise.bench.protocols import PROTOCOLS, find_test_images
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"12MP": (4032, 3024), "24MP": (6000, 4000)}
#: (photo, label, extra arguments of `selfdenoise denoise`)
RUNS = (("12MP", "nlm", ["-m", "nlm"]), ("12MP", "zero-shot", []), ("12MP", "zero-shot fast", ["--quality", "fast"]),
        ("24MP", "zero-shot", []))


def mosaic(crops: list[np.ndarray], width: int, height: int) -> np.ndarray:
    rows, k = [], 0
    for i in range(-(-height // 512)):
        row = []
        for j in range(-(-width // 512)):
            crop = crops[k % len(crops)]
            k += 1
            row.append(crop if (i + j) % 2 == 0 else crop[:, ::-1])
        rows.append(np.concatenate(row, 1))
    return np.concatenate(rows, 0)[:height, :width]


def timed(cmd: list[str]) -> dict:
    """Wall seconds and peak resident memory (GB) of one process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    return {"seconds": round(seconds, 1), "peak_gb": round(usage.ru_maxrss / 1e6, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "large-photos.json")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    ts = PROTOCOLS["real-polyu"].test_set(None, "validation")
    crops = [np.asarray(Image.open(item.path).convert("RGB")) for item in find_test_images(args.data, ts)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (w, h) in SIZES.items():
            Image.fromarray(mosaic(crops, w, h)).save(Path(tmp) / f"{name}.jpg", quality=95)
        for photo, label, extra in RUNS:
            cmd = [sys.executable, "-m", "selfdenoise", "denoise", str(Path(tmp) / f"{photo}.jpg"), "-o",
                   str(Path(tmp) / "out.png"), "-q", *extra]
            results.append({"photo": photo, "size": list(SIZES[photo]), "method": label,
                            "command": shlex.join(["selfdenoise", *cmd[3:]]), **timed(cmd)})
            print(results[-1], flush=True)
    nlm = next(r["seconds"] for r in results if r["method"] == "nlm")
    for r in results:
        if r["photo"] == "12MP":
            r["time_vs_nlm"] = round(r["seconds"] / nlm, 2)
    pick = lambda photo, method: next(r for r in results if r["photo"] == photo and r["method"] == method)
    summary = {"nlm_12mp_seconds": nlm, "default_12mp_seconds": pick("12MP", "zero-shot")["seconds"],
               "default_12mp_vs_nlm": pick("12MP", "zero-shot")["time_vs_nlm"],
               "fast_12mp_vs_nlm": pick("12MP", "zero-shot fast")["time_vs_nlm"],
               "default_24mp_seconds": pick("24MP", "zero-shot")["seconds"],
               "default_24mp_peak_gb": pick("24MP", "zero-shot")["peak_gb"]}
    record = {"what": "time and peak memory of selfdenoise denoise on large photos with real camera noise",
              "split": "validation", "photos": "mosaics of the 18 PolyU validation photos, JPEG quality 95",
              **summary, "runs": results,
              **origin(commit, shlex.join(["python3", *sys.argv]))}
    write_json(args.out, record)
    print("->", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
