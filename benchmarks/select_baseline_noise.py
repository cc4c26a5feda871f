"""Select how the classical baselines estimate the noise of an image without a given noise model, on
validation splits only, and record the decision.

    PYTHONPATH=src python3 benchmarks/select_baseline_noise.py --data ../shared/data --every 3

Two strategies, each for NLM and BM3D: ``one-level`` (one patch-PCA level, on stride-3 sub-images when
the noise is spatially correlated) and ``fitted`` (``baselines.with_estimated_noise``: the same on
correlated noise, but a fitted Poisson-Gaussian model through the generalized Anscombe VST when the noise
is white and signal dependent). Scored on the validation splits of the real-noise protocols, with each
protocol's metric; writes ``benchmarks/selection/baseline-noise.json``. No test image is read.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from statistics import mean

from selfdenoise.bench import write_json
from selfdenoise.bench.protocols import PROTOCOLS, find_test_images, test_pair
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.classical import baselines
from selfdenoise.classical.noise_level import estimate_sigma
from selfdenoise.core.metrics import evaluate_pair

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_NAMES = ("w2s-widefield", "real-nam")
FILTERS = {"nlm": baselines.nlm, "bm3d": baselines.bm3d}


def one_level(name: str, noisy):
    return FILTERS[name](noisy, sigma=estimate_sigma(noisy, stride="auto"))


def fitted(name: str, noisy):
    return FILTERS[name](noisy)


STRATEGIES = {"one-level": one_level, "fitted": fitted}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "selection" / "baseline-noise.json")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    curves = {}
    for protocol in PROTOCOL_NAMES:
        proto = PROTOCOLS[protocol]
        ts = proto.test_set(None, "validation")
        items = find_test_images(args.data, ts)[:: args.every]
        scores = {f"{f}/{s}": [] for f in FILTERS for s in STRATEGIES}
        for item in items:
            clean, noisy = test_pair(ts, item, proto.seed)
            for key in scores:
                name, strategy = key.split("/")
                scores[key].append(evaluate_pair(clean, STRATEGIES[strategy](name, noisy), ts.metric)["psnr"])
        curves[protocol] = {"dataset": ts.name, "n_images": len(items), "metric": ts.metric,
                            "psnr": {k: mean(v) for k, v in scores.items()}}
        print(protocol, {k: round(mean(v), 2) for k, v in scores.items()}, flush=True)
    totals = {s: mean(c["psnr"][f"{f}/{s}"] for c in curves.values() for f in FILTERS) for s in STRATEGIES}
    chosen = max(totals, key=totals.get)
    record = {"setting": "baselines' noise estimate without a given noise model", "split": "validation",
              "curves": curves, "mean_over_protocols_and_filters": totals, "chosen": chosen,
              "rule": "the highest mean validation PSNR over the protocols and both filters",
              **origin(commit, shlex.join(["python3", *sys.argv]))}
    write_json(args.out, record)
    print(f"chosen {chosen} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
