"""Collaborative Wiener filtering against BM3D's own second stage, fed the same pilot and the same sigma.

    PYTHONPATH=src python3 benchmarks/wiener_parity.py --data ../shared/data [--variants current,bm3d --exploratory]

On the validation images of ``gauss25-gray`` (Set12, Gaussian sigma 25, never a test image) BM3D's first
stage (hard thresholding, the bm3d package) gives a basic estimate; BM3D's Wiener stage and each variant of
``classical.wiener.collaborative_wiener`` then filter the noisy image with that pilot and the true sigma, one
pass. Writes ``benchmarks/selection/wiener-parity.json``: mean PSNR, per-image PSNR and seconds per image of
each, and its gap to BM3D's stage. The variants differ in what BM3D does differently from our filter (its
profile "np": search window 39, up to 32 patches per group, grouping only patches within a distance
threshold of 400 on the 0-255 scale, a 1-D Haar transform across the group, Kaiser-windowed aggregation with
beta 2), and in the factor on the noise variance in the Wiener gain (``shrinkage``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from selfdenoise.bench import write_json
from selfdenoise.bench.protocols import PROTOCOLS, find_test_images, test_pair
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.classical.wiener import collaborative_wiener
from selfdenoise.core import metrics

ROOT = Path(__file__).resolve().parent.parent
#: BM3D's "np" profile for its Wiener stage, in this module's terms (threshold per pixel, [0, 1] units)
BM3D_LIKE = dict(window=39, group=32, features=8, threshold=400 / 255**2, transform="haar", kaiser=2.0)
VARIANTS = {
    "current": {},
    "zero-shot": dict(window=51, features=8),
    "bm3d-structure": BM3D_LIKE,
    "bm3d-structure-dct": {**BM3D_LIKE, "transform": "dct"},
    "bm3d-structure-flat": {**BM3D_LIKE, "kaiser": 0.0},
    "bm3d-structure-no-threshold": {**BM3D_LIKE, "threshold": None},
    "bm3d-structure-shrinkage0.7": {**BM3D_LIKE, "shrinkage": 0.7},
    "bm3d-structure-shrinkage0.5": {**BM3D_LIKE, "shrinkage": 0.5},
    "bm3d-structure-shrinkage0.35": {**BM3D_LIKE, "shrinkage": 0.35},
    "current-shrinkage0.5": {"shrinkage": 0.5},
    "zero-shot-shrinkage0.5": dict(window=51, features=8, shrinkage=0.5),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--protocol", default="gauss25-gray")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "selection" / "wiener-parity.json")
    ap.add_argument("--exploratory", action="store_true", help="allow uncommitted changes (not for committed figures)")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=args.exploratory)
    import bm3d  # the optional extra this comparison is about

    proto = PROTOCOLS[args.protocol]
    test_set = proto.test_set(None, "validation")
    sigma = float(test_set.sigma) / 255.0
    names = args.variants.split(",")
    rows = []
    for item in find_test_images(args.data, test_set):
        clean, noisy = test_pair(test_set, item, proto.seed)
        z = noisy[..., 0].astype(np.float64)
        pilot = bm3d.bm3d(z, sigma, stage_arg=bm3d.BM3DStages.HARD_THRESHOLDING)
        score = lambda out: metrics.evaluate_pair(clean, np.clip(out, 0, 1)[..., None].astype(np.float32),  # noqa: E731
                                                  test_set.metric)["psnr"]
        row = {"name": item.name, "pilot": score(pilot)}
        t = time.perf_counter()
        row["bm3d-stage"] = score(bm3d.bm3d(z, sigma, stage_arg=pilot))
        row["bm3d-stage_seconds"] = time.perf_counter() - t
        y, p = torch.from_numpy(z).float()[None], torch.from_numpy(np.asarray(pilot)).float()[None]
        for name in names:
            t = time.perf_counter()
            row[name] = score(collaborative_wiener(y, p, sigma, **VARIANTS[name])[0].numpy())
            row[f"{name}_seconds"] = time.perf_counter() - t
        rows.append(row)
        print(item.name, {k: round(v, 2) for k, v in row.items() if k != "name"}, flush=True)
    mean = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
    summary = {name: {"psnr": mean(name), "gap_to_bm3d": mean(name) - mean("bm3d-stage"),
                      "seconds_per_image": mean(f"{name}_seconds"), "settings": VARIANTS[name]} for name in names}
    summary["bm3d-stage"] = {"psnr": mean("bm3d-stage"), "seconds_per_image": mean("bm3d-stage_seconds")}
    summary["pilot"] = {"psnr": mean("pilot")}
    print({k: round(v["psnr"], 3) for k, v in summary.items()})
    write_json(args.out, {"what": "collaborative Wiener variants against BM3D's Wiener stage, same pilot (BM3D's "
                                  "basic estimate) and sigma, one pass", "protocol": args.protocol, "split": "validation",
                          "dataset": test_set.name, "images": len(rows), "summary": summary, "per_image": rows,
                          **origin(commit)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
