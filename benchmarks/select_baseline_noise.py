"""Select how the classical baselines estimate the noise of an image without a given noise model, on
validation splits only, and record the decision.

    PYTHONPATH=src python3 benchmarks/select_baseline_noise.py --data ../shared/data --every 3

``baselines.with_estimated_noise`` runs NLM and BM3D with one patch-PCA level (on stride-3 sub-images
when the noise is spatially correlated), except on white noise whose fitted Poisson-Gaussian model has a
``dependence`` (variance at the bright end over the dark end) of at least a threshold: there it runs
through the generalized Anscombe VST with that model. Each image is denoised both ways, so the validation
PSNR of every threshold (``inf``: one level always) comes from the same runs; the fit is made with each
bin spread (``noise_level.BIN_SPREAD``: the details' variance or their squared MAD). Scored on the validation
splits of protocols with signal-dependent noise (W2S fluorescence, semi-synthetic Poisson-Gaussian
nuclei), white Gaussian noise (McMaster, not clipped: ``select_signal_dependence.py`` measures clipped
8-bit noise) and real camera noise (Nam), with each protocol's metric; writes ``benchmarks/selection/baseline-noise.json``. No test image is read.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path
from statistics import mean

from selfdenoise.bench import write_json
from selfdenoise.bench.protocols import PROTOCOLS, find_test_images, test_pair
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.classical import baselines
from selfdenoise.classical.noise_level import BIN_SPREAD, SIGNAL_DEPENDENCE, auto_sigma, estimate_poisson_gaussian
from selfdenoise.core.metrics import evaluate_pair

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_NAMES = ("w2s-widefield", "poisson-3d", "gauss25-color", "real-nam")
FILTERS = {"nlm": baselines.nlm, "bm3d": baselines.bm3d}
TOLERANCE = 0.01  # dB: a threshold must beat the current one by more than this to replace it


def scores_both_ways(noisy, clean, metric: str, spreads: list[str]) -> dict:
    """The image's fitted dependence (per ``spread`` of the fit) and each filter's PSNR with one level and
    through the VST fitted each way."""
    white = {name: (lambda img, s, f=f: f(img, sigma=s)) for name, f in FILTERS.items()}
    _, correlated = auto_sigma(noisy)
    row = {}
    for spread in spreads:
        gain, _, dependence = estimate_poisson_gaussian(noisy, spread=spread)
        row[f"dependence/{spread}"] = None if correlated or gain <= 0 else dependence
    for name, w in white.items():
        one_level = baselines.with_estimated_noise(w, noisy, dependence_threshold=math.inf)
        row[f"{name}/one-level"] = evaluate_pair(clean, one_level, metric)["psnr"]
        for spread in spreads:
            if row[f"dependence/{spread}"] is None:  # the VST is never taken on this image
                row[f"{name}/vst/{spread}"] = row[f"{name}/one-level"]
                continue
            out = baselines.with_estimated_noise(w, noisy, dependence_threshold=0.0, spread=spread)
            row[f"{name}/vst/{spread}"] = evaluate_pair(clean, out, metric)["psnr"]
    return row


def psnr_at(rows: list[dict], name: str, threshold: float, spread: str) -> float:
    """Mean PSNR of filter ``name`` when the VST fitted with ``spread`` is taken at ``dependence >= threshold``."""
    def taken(r):
        return r[f"dependence/{spread}"] is not None and r[f"dependence/{spread}"] >= threshold
    return mean(r[f"{name}/vst/{spread}"] if taken(r) else r[f"{name}/one-level"] for r in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--thresholds", default="1.1,1.25,1.5,2,3,inf", help="comma-separated; inf = one level always")
    ap.add_argument("--spreads", default="moment,mad", help="comma-separated bin spreads of the fit (BIN_SPREAD)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "selection" / "baseline-noise.json")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    spreads = args.spreads.split(",")
    curves = {}
    for protocol in PROTOCOL_NAMES:
        proto = PROTOCOLS[protocol]
        ts = proto.test_set(None, "validation")
        items = find_test_images(args.data, ts)[:: args.every]
        rows = []
        for item in items:
            clean, noisy = test_pair(ts, item, proto.seed)
            rows.append(scores_both_ways(noisy, clean, ts.metric, spreads))
        curves[protocol] = {"dataset": ts.name, "n_images": len(items), "metric": ts.metric,
                            "dependence": {s: [r[f"dependence/{s}"] for r in rows] for s in spreads},
                            "psnr": {f"{f}/{s}/{t:g}": psnr_at(rows, f, t, s)
                                     for f in FILTERS for s in spreads for t in thresholds}}
        print(protocol, {k: round(v, 2) for k, v in curves[protocol]["psnr"].items()}, flush=True)
    totals = {f"{s}/{t:g}": mean(c["psnr"][f"{f}/{s}/{t:g}"] for c in curves.values() for f in FILTERS)
              for s in spreads for t in thresholds}
    best = max(totals, key=totals.get)
    current = f"{BIN_SPREAD}/{SIGNAL_DEPENDENCE:g}"
    chosen = current if current in totals and totals[best] - totals[current] <= TOLERANCE else best
    record = {"setting": "baselines' noise estimate without a given noise model: the bin spread of the "
                         "Poisson-Gaussian fit (BIN_SPREAD) / the signal dependence from which the fitted VST "
                         "is taken (inf: one level always)",
              "split": "validation", "curves": curves, "mean_over_protocols_and_filters": totals,
              "chosen": chosen,
              "rule": f"the highest mean validation PSNR over the protocols and both filters; the current "
                      f"spread/threshold ({current}) stays unless another beats it by more than {TOLERANCE} dB",
              **origin(commit, shlex.join(["python3", *sys.argv]))}
    write_json(args.out, record)
    print(f"chosen {chosen} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
