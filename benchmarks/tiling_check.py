"""Tiled against untiled zero-shot on Kodak (Gaussian sigma 25, seeded as the single-image protocol):
the same adapted network denoises each photo whole and in tiles, then both go through the same Wiener
refinement. Records both PSNRs per image and the largest difference.

    PYTHONPATH=src python3 benchmarks/tiling_check.py --data ../shared/data [--tile 256] [--refine 1]

Large photos are denoised in ``NETWORK_TILE`` tiles (and refined in 512-pixel tiles); the Kodak photos
(768x512) fit in one, so ``--tile`` forces smaller ones to put many seams in each photo. Writes
``benchmarks/results/single-image/tiling-check.json``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from selfdenoise.bench import write_json
from selfdenoise.bench.protocols import PROTOCOLS, find_test_images, test_pair
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.classical.wiener import refine_estimate
from selfdenoise.core.metrics import psnr
from selfdenoise.methods.fitting import fit_single_image
from selfdenoise.methods.zero_shot import ZeroShot

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--refine", type=int, default=0, help="Wiener passes after the network (window 27)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "single-image" / "tiling-check.json")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    proto = PROTOCOLS["single-image"]
    ts = proto.test_set(None, "test")
    rows = []
    for item in find_test_images(args.data, ts):
        clean, noisy = test_pair(ts, item, proto.seed)
        x = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1)))[None].float()
        whole, tiled = ZeroShot(tile=100_000), ZeroShot(tile=args.tile)
        model = fit_single_image(whole, x, steps=150, seed=0, lr=whole.learning_rate)
        outs = []
        for method in (whole, tiled):
            out = method.denoise(model, x)
            if args.refine:
                out = refine_estimate(x, out, args.refine, None, 100_000, window=27, features=8)
            outs.append(psnr(clean, np.clip(out[0].permute(1, 2, 0).numpy(), 0, 1)))
        rows.append({"image": item.name, "whole": round(outs[0], 4), "tiled": round(outs[1], 4),
                     "difference": round(outs[1] - outs[0], 4)})
        print(rows[-1], flush=True)
    diffs = [r["difference"] for r in rows]
    record = {"what": "zero-shot, tiled vs whole-image network inference, same adapted network",
              "protocol": "single-image", "split": "test", "tile": args.tile, "refine_passes": args.refine,
              "images": rows, "mean_difference": round(float(np.mean(diffs)), 4),
              "largest_difference": round(float(max(diffs, key=abs)), 4),
              **origin(commit, shlex.join(["python3", *sys.argv]))}
    write_json(args.out, record)
    print(f"mean {record['mean_difference']:+.4f} dB, largest {record['largest_difference']:+.4f} dB -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
