#!/usr/bin/env python3
"""Scale-invariant PSNR of a denoised image against a reference (numpy only; runs in any environment).

    python benchmarks/peers/si_psnr.py OUTPUT REFERENCE [OUTPUT2 ...]

Each OUTPUT and REFERENCE is a .npy array or an image file readable by PIL (8-bit scaled to [0,1]). The output
is mapped to the reference by the least-squares affine fit a*x + b, then PSNR uses the data range
max(ref) - min(ref) (as in shared/benchmarks.md and CARE/CSBDeep). With several outputs the reference is last.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def load(path: str) -> np.ndarray:
    p = Path(path)
    if p.suffix == ".npy":
        return np.load(p, allow_pickle=False).astype(np.float64)
    from PIL import Image

    a = np.asarray(Image.open(p))
    scale = 65535.0 if a.dtype == np.uint16 else 255.0
    return a.astype(np.float64) / scale


def si_psnr(x: np.ndarray, ref: np.ndarray) -> float:
    x, ref = x.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
    a, b = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), ref, rcond=None)[0]
    mse = np.mean((a * x + b - ref) ** 2)
    rng = ref.max() - ref.min()
    return float(10 * np.log10(rng**2 / mse))


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    ref = load(argv[-1])
    for out in argv[:-1]:
        x = load(out)
        if x.shape != ref.shape:
            print(f"si_psnr: error: {out} has shape {x.shape}, reference {ref.shape}", file=sys.stderr)
            return 2
        print(f"{si_psnr(x, ref):.2f} dB  {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
