"""PSNR against training steps for ``--method self2self`` on crops of Kodak images.

Noise: Gaussian sigma/255 added in [0, 1], not clipped, seeded per image (seed = image index).
Outputs are clipped and quantised to uint8 before PSNR. Each setting trains once on each image
(center crop of ``--size`` pixels) and is scored at every step count of ``--steps`` with an
ensemble of ``--passes`` predictions (PSNR is reported for the first 1, 4, 8, 16, ... of them). The
learning rate follows ``Self2Self.lr_at`` (warm-up, then constant); a setting with
``"schedule": "cosine"`` decays it to 5 % over the last step count. Settings are compared at equal
step counts. Seconds per step are the median CPU time (``time.process_time``) of
the training steps: with ``--threads 1`` that is single-thread time, robust to other jobs sharing the CPU.
Writes (merging) benchmarks/results/single-image/self2self-curve.json.

    PYTHONPATH=src python3 benchmarks/self2self_curve.py --data ../shared/data --images 3 \
        --size 256 --steps 200,400 --settings default --threads 1
"""
from __future__ import annotations

import argparse
import json
import math
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
from selfdenoise.methods.self2self import Self2Self

#: name -> Self2Self options (+ "schedule": "constant" | "cosine"); "uF" = unshuffle F, "bN" = N masked
#: crops of "cS" pixels per step, "wW" = encoder width.
SETTINGS: dict[str, dict] = {
    "default": {},
    "w48-u1-b4-c64-lr1e-3": {"width": 48, "unshuffle": 1, "batch": 4, "crop": 64, "lr": 1e-3},
    "w48-u2-b4-c64-lr1e-3": {"width": 48, "unshuffle": 2, "batch": 4, "crop": 64, "lr": 1e-3},
    "w48-u2-b4-c64-lr1e-3-nodrop": {"width": 48, "unshuffle": 2, "batch": 4, "crop": 64, "lr": 1e-3, "dropout": 0.0},
    "w48-u2-b4-c64-lr3e-3": {"width": 48, "unshuffle": 2, "batch": 4, "crop": 64, "lr": 3e-3},
    "w48-u2-b4-c64-lr1e-2": {"width": 48, "unshuffle": 2, "batch": 4, "crop": 64, "lr": 1e-2},
    "w48-u2-b4-c64-d3-lr3e-3": {"width": 48, "unshuffle": 2, "batch": 4, "crop": 64, "depth": 3, "lr": 3e-3},
    "w48-u2-b4-c64-lr3e-3-cos": {"width": 48, "unshuffle": 2, "batch": 4, "crop": 64, "lr": 3e-3,
                                 "schedule": "cosine"},
    "w48-u2-b8-c64-lr3e-3": {"width": 48, "unshuffle": 2, "batch": 8, "crop": 64, "lr": 3e-3},
    "w32-u2-b4-c64-lr3e-3": {"width": 32, "unshuffle": 2, "batch": 4, "crop": 64, "lr": 3e-3},
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return metrics.psnr(metrics.quantize_uint8(a), metrics.quantize_uint8(b))


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def run(options: dict, clean: np.ndarray, noisy: np.ndarray, steps: list[int], passes: int) -> dict:
    opts = dict(options)
    schedule = opts.pop("schedule", "constant")
    method = Self2Self(**opts, steps=max(steps), passes=passes)
    x = torch.from_numpy(noisy.transpose(2, 0, 1).copy())[None]
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = method.build_model(3)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=method.lr)
    total = max(steps)
    times, curve = [], {}
    for step in range(max(steps)):
        decay = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / total)) if schedule == "cosine" else 1.0
        for g in opt.param_groups:
            g["lr"] = method.lr_at(step, total, method.lr) * decay
        t = time.process_time()  # CPU time of this (single-threaded) process: robust to a busy machine
        loss = method.training_step(method.sample_batch(x, gen), model, step, total)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.process_time() - t)
        if step + 1 in steps:
            method._generator = torch.Generator().manual_seed(1)
            preds = []
            for _ in range(passes):
                method.passes = 1
                preds.append(method.denoise(model, x)[0].numpy().transpose(1, 2, 0))
            method.passes = passes
            model.train()
            counts = sorted(n for n in {1, 4, 8, 16, passes} if n <= passes)
            ens = {n: round(psnr(np.mean(preds[:n], 0), clean), 3) for n in counts}
            curve[step + 1] = ens
            print(f"    step {step + 1}: {ens}  ({np.median(times):.3f} s/step)", flush=True)
    return {"seconds_per_step": round(float(np.median(times)), 4), "psnr_by_steps_then_passes": curve}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--images", default="1,3", help="Kodak image numbers")
    ap.add_argument("--size", type=int, default=192, help="center crop side")
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--steps", default="100,200,400")
    ap.add_argument("--passes", type=int, default=16)
    ap.add_argument("--settings", default="w48-b4-c64")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/single-image/self2self-curve.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps = [int(s) for s in args.steps.split(",")]

    result = json.loads(args.out.read_text()) if args.out.is_file() else {}
    result.update({
        "machine": {"cpu_cores": os.cpu_count(), "torch_threads": args.threads,
                    "processor": platform.processor() or platform.machine(), "torch": torch.__version__},
        "noise": f"gaussian sigma={args.sigma:g}/255, not clipped, seed = image index (selfdenoise.noise.add_noise)",
    })
    points = result.setdefault("points", {})
    for name in args.settings.split(","):
        for k in args.images.split(","):
            path = args.data / "kodak24" / f"kodim{int(k):02d}.png"
            img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
            h, w = img.shape[:2]
            s = args.size
            clean = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
            noisy = add_noise(clean, f"gauss:{args.sigma:g}", seed=int(k))
            print(f"{name} {path.name} (noisy {psnr(noisy, clean):.2f} dB)", flush=True)
            r = run(SETTINGS[name], clean, noisy, steps, args.passes)
            points[f"{name}/{path.stem}-{s}"] = {
                "command": " ".join(["python3"] + sys.argv), "commit": commit(), "options": SETTINGS[name],
                "image": f"{path.name} center {s}x{s}", **r}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
