"""PSNR vs seconds per image for ``--method zero-shot`` on the first N Kodak images.

Noise: Gaussian sigma/255 added in [0, 1], not clipped, seeded per image (seed = image index).
Outputs are clipped to [0, 1] and quantised to uint8 before PSNR. Writes JSON to
benchmarks/results/single-image/zero-shot-curve.json (merging with settings already there).

    PYTHONPATH=src python3 benchmarks/zero_shot_curve.py --data ../shared/data --n 6

Each setting is a name -> ZeroShot(**options) entry in SETTINGS; ``--settings`` picks some.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from selfdenoise.core import metrics
from selfdenoise.core.noise import add_noise
from selfdenoise.methods.zero_shot import ZeroShot

SETTINGS: dict[str, dict] = {
    "prior-only-tta1": {"steps": 0, "tta": 1, "refine": 0},
    "prior-only-tta8": {"steps": 0, "tta": 8, "refine": 0},
    "adapt150-tta8": {"steps": 150, "tta": 8, "refine": 0},
    "adapt400-tta8": {"steps": 400, "tta": 8, "refine": 0},
    "adapt800-tta8": {"steps": 800, "tta": 8, "refine": 0},
    "adapt400-r2r-tta8": {"steps": 400, "tta": 8, "objective": "r2r", "alpha": 1.0, "refine": 0},
    "scratch1500-tta8": {"use_prior": False, "steps": 1500, "tta": 8, "refine": 0},
    "prior-only-tta8-refine1": {"steps": 0, "tta": 8, "refine": 1},
    "prior-only-tta8-refine2": {"steps": 0, "tta": 8, "refine": 2},
    "adapt150-tta8-refine1": {"steps": 150, "tta": 8, "refine": 1},
    "adapt150-tta8-refine2": {"steps": 150, "tta": 8, "refine": 2},
    "adapt150-tta8-refine4": {"steps": 150, "tta": 8, "refine": 4},
    "default": {},  # 150 Neighbor2Neighbor adaptation steps + 8x TTA + 3 collaborative Wiener passes
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """The benchmark protocol's PSNR: both images clipped and quantised to uint8 first."""
    return metrics.psnr(metrics.quantize_uint8(a), metrics.quantize_uint8(b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--set", default="kodak24")
    ap.add_argument("--n", type=int, default=6, help="first N images of the set")
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--settings", default="prior-only-tta1,prior-only-tta8,adapt150-tta8,default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/single-image/zero-shot-curve.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    paths = sorted(p for p in (args.data / args.set).iterdir() if p.suffix.lower() in {".png", ".tif", ".tiff"})[: args.n]
    images = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0 for p in paths]
    # The benchmark protocol's noise: seeded per image (seed = image index), unclipped.
    noisy = [add_noise(im, f"gauss:{args.sigma:g}", seed=i) for i, im in enumerate(images)]

    result = {}
    if args.out.is_file():
        result = json.loads(args.out.read_text())
    result.update(
        {
            "command": " ".join([Path(sys.executable).name] + sys.argv),
            "machine": {"cpu_cores": os.cpu_count(), "torch_threads": args.threads, "processor": platform.processor() or platform.machine(), "torch": torch.__version__},
            "data": f"{args.set}: {', '.join(p.name for p in paths)}",
            "noise": f"gaussian sigma={args.sigma:g}/255, not clipped, seed = image index (selfdenoise.noise.add_noise)",
        }
    )
    points = result.setdefault("points", {})
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    for name in args.settings.split(","):
        opts = SETTINGS[name]
        method = ZeroShot(**opts)
        secs, ps, per = [], [], []
        for i, (clean, y) in enumerate(zip(images, noisy)):
            x = torch.from_numpy(y.transpose(2, 0, 1).copy())[None]
            t = time.perf_counter()
            out = method.fit_denoise(x, seed=0)
            dt = time.perf_counter() - t
            p = psnr(out[0].numpy().transpose(1, 2, 0), clean)
            secs.append(dt)
            ps.append(p)
            per.append({"image": paths[i].name, "seconds": round(dt, 2), "psnr": round(p, 3)})
            print(f"{name:>18s} {paths[i].name}: {p:.3f} dB  {dt:.1f} s", flush=True)
        points[name] = {
            "command": result["command"],
            "commit": commit,
            "options": {"steps": method.max_steps, "lr": method.learning_rate, "tta": method.tta, "crop": method.crop, "batch": method.batch,
                        "prior": method.has_prior, "refine": method.refine, **opts},
            "seconds_per_image": round(float(np.mean(secs)), 2),
            "psnr": round(float(np.mean(ps)), 3),
            "per_image": per,
        }
        print(f"{name:>18s} mean: {np.mean(ps):.3f} dB  {np.mean(secs):.1f} s/image", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
