"""Train the prior shipped with ``--method zero-shot`` (src/selfdenoise/weights/zero_shot_prior.safetensors)
under the rules of benchmarks.md, with one command:

    PYTHONPATH=src python3 benchmarks/train_zero_shot_prior.py --data ../shared/data --minutes 25

What the training code receives: noisy arrays only. Each training image is noised before training, with
recorded seeds (realisation ``r`` of image ``i`` gets seed ``SEED + 1000 r + i``) and its own noise level
drawn from U[5, 55]/255 by that seed: once for the gray images, ``COLOUR_REALISATIONS`` times for the
colour ones, so that colour makes about 40% of the samples (32 colour scenes against 400 gray). The clean
files and the noise levels never reach the loss, which is the blind Neighbor2Neighbor objective (the
library's ``ne2ne`` method, trained by the library's own loop).

Training images (disjoint from every test set of benchmarks.md): the 400 gray DnCNN images of
``bsd400_train`` (used as gray RGB: three equal channels with the same noise, as zero-shot runs gray
images) and the 32 colour images of ``bsd300_test`` that are not in (C)BSD68 (``CBSD68_IDS.txt``).
The validation split of ``single-image`` (McMaster, sigma 25) is scored at the end and recorded; it
selects nothing here (the recipe is the library's ``fast`` preset with the prior's small widths).

The prior file keeps the format zero-shot reads (fp16 UNetSmall weights + metadata: widths, depth, the
training files, seeds, noise, command, steps, seconds, the validation PSNR).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from selfdenoise import api
from selfdenoise.core.io import read_image
from selfdenoise.training import from_arrays

SEED = 5_000_000  # noise seeds of the prior's training images (no test image of any protocol uses them)
SIGMA_RANGE = (5.0, 55.0)
COLOUR_REALISATIONS = 8
WIDTHS = (32, 64, 96)


def training_files(data: Path) -> list[Path]:
    """The 400 gray DnCNN images and the BSD300 test images outside (C)BSD68."""
    cbsd68 = set((data / "bsd300_test" / "CBSD68_IDS.txt").read_text().split())
    colour = [p for p in sorted((data / "bsd300_test").glob("*.png")) if p.stem not in cbsd68]
    return sorted((data / "bsd400_train").glob("*.png")) + colour


def noisy_realisations(files: list[Path]) -> tuple[list[np.ndarray], list[dict]]:
    """Noisy RGB realisations (gray files as three equal channels with the same noise; colour files
    ``COLOUR_REALISATIONS`` times), with the seed and noise level of each, drawn by that seed."""
    noisy, record = [], []
    for i, f in enumerate(files):
        clean, _ = read_image(f)
        for r in range(1 if clean.shape[-1] == 1 else COLOUR_REALISATIONS):
            rng = np.random.default_rng(SEED + 1000 * r + i)
            sigma = float(rng.uniform(*SIGMA_RANGE))
            y = clean + sigma / 255.0 * rng.standard_normal(clean.shape).astype(np.float32)
            noisy.append(np.repeat(y, 3, axis=-1) if y.shape[-1] == 1 else y)
            record.append({"file": f"{f.parent.name}/{f.name}", "seed": SEED + 1000 * r + i, "sigma": round(sigma, 3)})
    return noisy, record


def validation_psnr(data: Path, prior: Path) -> float:
    """Zero-shot with this prior on the single-image validation split (McMaster, sigma 25, seed = index),
    network only (no Wiener refinement), 8x TTA: the prior's own quality."""
    scores = []
    for i, f in enumerate(sorted((data / "mcmaster").glob("*.tif"))):
        clean, _ = read_image(f)
        noisy = api.add_noise(clean, "gauss:25", seed=i)
        out = api.denoise(noisy, "zero-shot", steps=0, refine=0, prior_path=str(prior))
        scores.append(api.evaluate(clean, out)["psnr"])
    return float(np.mean(scores))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("src/selfdenoise/weights/zero_shot_prior.safetensors"))
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--steps", type=int, default=None, help="train this many steps instead (exactly repeatable)")
    ap.add_argument("--crop", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    files = training_files(args.data)
    noisy, record = noisy_realisations(files)
    print(f"{len(files)} training images, {len(noisy)} fixed noisy realisations", flush=True)
    data = from_arrays(noisy, [r["file"] for r in record], layout="fixed noisy realisations (zero-shot prior)")
    t0 = time.time()
    result = api.train(data, "ne2ne", None, steps=args.steps, minutes=None if args.steps else args.minutes,
                       widths=WIDTHS, crop=args.crop, batch=args.batch, seed=args.seed, progress=True)
    seconds = time.time() - t0
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in result.model.network.state_dict().items()}
    meta = {"arch": "UNetSmall", "channels": "3", "widths": ",".join(map(str, WIDTHS)), "depth": "2",
            "loss": "ne2ne (blind Neighbor2Neighbor, the library's train loop)", "steps": str(result.steps),
            "train_seconds": f"{seconds:.0f}", "command": shlex.join(["python3", *sys.argv]),
            "noise": f"gauss, sigma ~ U{list(SIGMA_RANGE)} per image, drawn once by its seed; never given to the loss",
            "train_files": json.dumps(record), "clean_images_seen": "none"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out), metadata=meta)
    meta["val_psnr_mcmaster_sigma25"] = f"{validation_psnr(args.data, args.out):.3f}"
    save_file(state, str(args.out), metadata=meta)
    print(f"done: {result.steps} steps in {seconds:.0f} s; McMaster validation {meta['val_psnr_mcmaster_sigma25']} dB "
          f"(network only) -> {args.out}", flush=True)


if __name__ == "__main__":
    main()
