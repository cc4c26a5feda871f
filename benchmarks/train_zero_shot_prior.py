"""Train the prior shipped with ``--method zero-shot`` (src/selfdenoise/weights/zero_shot_prior.safetensors).

Self-supervised only: the loss never sees a clean target. Each training sample is a random crop of
a training image with synthetic noise drawn on the fly (blind: Gaussian, per-sample sigma uniform in
[5, 55]/255 at the network input, not clipped). Two objectives:

* ``--loss r2r`` (default): Recorrupted-to-Recorrupted (Pang et al., CVPR 2021). From ONE noisy crop
  y with known noise level sigma, draw z of the same noise model and train ``f(y + a z) ~ y - z / a``
  (a = 1). Both sides carry independent noise, so in expectation this equals a supervised loss at
  input noise sqrt(1 + a^2) sigma; it needs the noise model of the training images (known here,
  since the noise is synthetic), not their clean version.
* ``--loss n2n``: Neighbor2Neighbor (random neighbour sub-sampler, reconstruction + regulariser,
  gamma ramped 0 -> 2). Fully blind; measured here no faster: 25.9 dB validation PSNR after 1250
  steps for both objectives with the 48/96/128 network.

Training data: BSD300 test split (colour 481x321, minus 4 held-out validation images) and the
DnCNN 400 gray 180x180 images (used as 3 equal channels; half of the time with per-channel noise,
half of the time with the same noise on all channels, i.e. a true gray image). The held-out BSD300
images are used only to print a validation PSNR (sigma 25); the last EMA weights are shipped.

Reproduce (2-core CPU shared with other jobs, torch 2.13, one thread; the lr/gamma schedule follows
wall time, so the number of steps depends on the machine's speed and load; pass --steps N without
--seconds for an exactly repeatable run). The shipped file came from this command: 7509 steps in
1501 s (25 min), final validation PSNR 26.37 dB on 4 held-out BSD300 images at sigma 25 (the
weights' metadata records the same), 765 kB:

    PYTHONPATH=src python3 benchmarks/train_zero_shot_prior.py --data ../shared/data \
        --loss r2r --patch 96 --widths 32,64,96 --lr 1e-3 --seconds 1500 --threads 1 \
        --val-every 250 --out src/selfdenoise/weights/zero_shot_prior.safetensors

The training log is benchmarks/results/single-image/zero-shot-prior-train.log.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from selfdenoise.core import metrics
from selfdenoise.methods.ne2ne import neighbor_loss
from selfdenoise.nets.unet_small import UNetSmall

VAL_IDS = ["101085", "175043", "253027", "376043"]  # held out from training


def load(path: Path, gray: bool = False) -> np.ndarray:
    im = Image.open(path)
    im = im.convert("L" if gray else "RGB")
    a = np.asarray(im, dtype=np.float32) / 255.0
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """The benchmark protocol's PSNR: both images clipped and quantised to uint8 first."""
    return metrics.psnr(metrics.quantize_uint8(a), metrics.quantize_uint8(b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("src/selfdenoise/weights/zero_shot_prior.safetensors"))
    ap.add_argument("--steps", type=int, default=100000, help="maximum number of steps")
    ap.add_argument("--seconds", type=float, default=None,
                    help="wall-clock budget: the lr/gamma schedules then follow elapsed time (progress = "
                    "max(step/steps, elapsed/seconds)) and training stops when it is spent")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping")
    ap.add_argument("--widths", type=str, default="32,64,96")
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--loss", choices=["r2r", "n2n"], default="r2r")
    ap.add_argument("--alpha", type=float, default=1.0, help="R2R recorruption strength")
    ap.add_argument("--gamma", type=float, default=2.0)
    ap.add_argument("--sigma-min", type=float, default=5.0)
    ap.add_argument("--sigma-max", type=float, default=55.0)
    ap.add_argument("--p-colour", type=float, default=0.6)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--init", type=Path, default=None, help="start from these weights (safetensors) instead of random")
    ap.add_argument("--gamma-start", type=float, default=0.0, help="gamma ramps from gamma-start*gamma to gamma")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    colour_paths = sorted((args.data / "bsd300_test").glob("*.png"))
    val = [load(p) for p in colour_paths if p.stem in VAL_IDS]
    colour = [load(p) for p in colour_paths if p.stem not in VAL_IDS]
    gray = [load(p, gray=True) for p in sorted((args.data / "bsd400_train").glob("*.png"))]
    print(f"train: {len(colour)} colour, {len(gray)} gray; val: {len(val)} colour", flush=True)
    val_noisy = [v + np.random.default_rng(1000 + i).standard_normal(v.shape).astype(np.float32) * 25 / 255 for i, v in enumerate(val)]

    widths = tuple(int(w) for w in args.widths.split(","))
    model = UNetSmall(3, widths, args.depth).to(memory_format=torch.channels_last)
    ema = UNetSmall(3, widths, args.depth).to(memory_format=torch.channels_last)
    if args.init is not None:
        from safetensors.torch import load_file

        model.load_state_dict({k: v.float() for k, v in load_file(str(args.init)).items()})
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"UNetSmall widths={widths} depth={args.depth}: {n_params} parameters", flush=True)

    P = args.patch

    def sample() -> tuple[torch.Tensor, torch.Tensor]:
        """Noisy crops y and, for R2R, a fresh draw z of the same noise model (same sigma and
        channel structure); z is all zeros for the Neighbor2Neighbor loss."""
        out = np.empty((args.batch, 3, P, P), np.float32)
        zs = np.zeros((args.batch, 3, P, P), np.float32)
        for b in range(args.batch):
            is_colour = rng.random() < args.p_colour
            im = colour[rng.integers(len(colour))] if is_colour else gray[rng.integers(len(gray))]
            _, h, w = im.shape
            i, j = rng.integers(h - P + 1), rng.integers(w - P + 1)
            c = im[:, i : i + P, j : j + P]
            k = rng.integers(8)
            c = np.rot90(c, k % 4, axes=(1, 2))
            if k >= 4:
                c = c[:, :, ::-1]
            sigma = rng.uniform(args.sigma_min, args.sigma_max) / 255.0
            if args.loss == "r2r":  # the network input carries sqrt(1 + alpha^2) sigma
                sigma /= math.sqrt(1 + args.alpha**2)
            nch = 1 if (not is_colour and rng.random() < 0.5) else 3  # 1: true gray, same noise on all channels
            out[b] = c + sigma * rng.standard_normal((nch, P, P), dtype=np.float32)
            if args.loss == "r2r":
                zs[b] = sigma * rng.standard_normal((nch, P, P), dtype=np.float32)
        cl = torch.channels_last
        return torch.from_numpy(out).contiguous(memory_format=cl), torch.from_numpy(zs).contiguous(memory_format=cl)

    def validate() -> float:
        vals = []
        with torch.inference_mode():
            for clean, noisy in zip(val, val_noisy):
                x = torch.from_numpy(noisy)[None].contiguous(memory_format=torch.channels_last)
                vals.append(psnr(ema(x)[0].numpy(), clean))
        return float(np.mean(vals))

    def save(step: int, val_psnr: float, elapsed: float) -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in ema.state_dict().items()}
        meta = {
            "arch": "UNetSmall",
            "channels": "3",
            "widths": ",".join(map(str, widths)),
            "depth": str(args.depth),
            "loss": args.loss,
            "steps": str(step),
            "val_psnr_bsd300_sigma25": f"{val_psnr:.3f}",
            "train_seconds": f"{elapsed:.0f}",
            "command": " ".join(sys.argv),
        }
        save_file(tensors, str(args.out), metadata=meta)

    warmup = max(1, args.warmup)
    t0 = time.time()
    log_loss = 0.0
    best = -1.0
    step = 0
    frac = 0.0
    while frac < 1.0:
        step += 1
        frac = step / args.steps
        if args.seconds:
            frac = min(1.0, max(frac, (time.time() - t0) / args.seconds))
        lr = args.lr * min(1.0, step / warmup) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        y, z = sample()
        if args.loss == "r2r":
            # Recorrupted-to-Recorrupted (Pang et al. 2021): y + a z and y - z / a carry independent
            # noise, so the loss is an unbiased stand-in for a supervised loss at the input's noise level.
            loss = (model(y + args.alpha * z) - (y - z / args.alpha)).pow(2).mean()
        else:
            loss, rec, reg = neighbor_loss(model, y, args.gamma * (args.gamma_start + (1 - args.gamma_start) * frac), gen)
        opt.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            print(f"step {step}: non-finite loss, skipped", flush=True)
            continue
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - d)
        log_loss += float(loss.detach())
        if step % args.val_every == 0 or frac >= 1.0:
            v = validate()
            el = time.time() - t0
            print(
                json.dumps({"step": step, "seconds": round(el, 1), "loss": round(log_loss / args.val_every, 6), "lr": lr, "val_psnr": round(v, 3)}),
                flush=True,
            )
            log_loss = 0.0
            best = max(best, v)
            save(step, v, el)  # last EMA weights are shipped (no selection on the validation score)
    print(f"done: {step} steps in {time.time() - t0:.0f} s -> {args.out}", flush=True)


if __name__ == "__main__":
    main()
