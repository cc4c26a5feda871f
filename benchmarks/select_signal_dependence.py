"""Select the signal dependence from which the noise counts as Poisson-Gaussian, on validation images only,
and record the decision.

    PYTHONPATH=src python3 benchmarks/select_signal_dependence.py --data ../shared/data

``noise_level.poisson_gaussian_model`` fits ``var = gain * signal + var0`` to an image and calls its white noise
signal dependent when the fitted variance at the bright end over the dark end (``dependence``) is at least
``noise_level.SIGNAL_DEPENDENCE``; then the baselines and zero-shot run through the generalized Anscombe VST.
``select_baseline_noise.py`` scored that threshold by PSNR on the protocols' noisy images, which are never
clipped, and was level from 1.5 to 3. An 8-bit photo with Gaussian noise is clipped at 0 and 1: the clipping
shrinks the variance at both ends, the linear fit read a dependence of 2-4 into it and the clipped model
(``noise_level.CLIPPING``) is there to read 1. This script measures the fitted dependence on both kinds of
validation image:

- signal dependent: the W2S validation frames (real fluorescence), McMaster with Poisson noise
  (``poisson30-color`` validation) and the ``poisson-3d`` validation slices (Poisson-Gaussian, read-noise
  dominated);
- white Gaussian as an 8-bit file holds it: the McMaster validation images with Gaussian noise of sigma 5, 15,
  25 and 50, clipped to [0, 1] and rounded to 1/255 (seeded), and the ``gauss25-color`` validation images as the
  protocol makes them (not clipped).

The chosen threshold misroutes the fewest images; among those that tie, the one farthest (in log ratio) from
the nearest correctly routed image. Writes ``benchmarks/selection/signal-dependence.json``.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

import numpy as np

from selfdenoise.bench import write_json
from selfdenoise.bench.protocols import PROTOCOLS, find_test_images, test_pair
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.classical.noise_level import auto_sigma, estimate_poisson_gaussian

ROOT = Path(__file__).resolve().parent.parent
SIGNAL_DEPENDENT = ("w2s-widefield", "poisson30-color", "poisson-3d")
CLIPPED_SIGMAS = (5, 15, 25, 50)


def fitted_dependence(noisy: np.ndarray) -> float | None:
    """The fit's dependence, or None where the noise is spatially correlated (the fit is never consulted)."""
    if auto_sigma(noisy)[1]:
        return None
    gain, _, dependence = estimate_poisson_gaussian(noisy)
    return dependence if gain > 0 else 1.0


def validation_pairs(data: Path, protocol: str):
    proto = PROTOCOLS[protocol]
    ts = proto.test_set(None, "validation")
    for item in find_test_images(data, ts):
        yield item.name, *test_pair(ts, item, proto.seed)


def misrouted(threshold: float, dependent: list[float], white: list[float]) -> int:
    return sum(d < threshold for d in dependent) + sum(d >= threshold for d in white)


def margin(threshold: float, dependent: list[float], white: list[float]) -> float:
    """The smallest log ratio between ``threshold`` and a correctly routed image's dependence."""
    right = [d for d in dependent if d >= threshold] + [d for d in white if d < threshold]
    return min(abs(math.log(d / threshold)) for d in right)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--thresholds", default="1.5,2,3,4,5,6,8")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "selection" / "signal-dependence.json")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    sets = {}
    for protocol in SIGNAL_DEPENDENT:
        sets[f"{protocol} validation"] = [fitted_dependence(noisy) for _, _, noisy in validation_pairs(args.data, protocol)]
    mcmaster = [(name, clean) for name, clean, _ in validation_pairs(args.data, "gauss25-color")]
    for k, sigma in enumerate(CLIPPED_SIGMAS):
        rng = np.random.default_rng(1000 + k)
        sets[f"mcmaster gauss {sigma} 8-bit"] = [
            fitted_dependence(np.round(np.clip(c + rng.normal(0, sigma / 255, c.shape), 0, 1) * 255) / 255)
            for _, c in mcmaster]
    sets["gauss25-color validation"] = [fitted_dependence(noisy) for _, _, noisy in
                                        validation_pairs(args.data, "gauss25-color")]
    dependent = [d for name, ds in sets.items() if name.split()[0] in SIGNAL_DEPENDENT for d in ds if d is not None]
    white = [d for name, ds in sets.items() if name.split()[0] not in SIGNAL_DEPENDENT for d in ds if d is not None]
    thresholds = [float(t) for t in args.thresholds.split(",")]
    curve = {f"{t:g}": {"misrouted": misrouted(t, dependent, white), "margin": margin(t, dependent, white)}
             for t in thresholds}
    fewest = min(c["misrouted"] for c in curve.values())
    chosen = max((t for t in curve if curve[t]["misrouted"] == fewest), key=lambda t: curve[t]["margin"])
    for name, ds in sets.items():
        print(name, [None if d is None else round(d, 2) for d in ds])
    print({t: (c["misrouted"], round(c["margin"], 3)) for t, c in curve.items()})
    record = {"setting": "noise_level.SIGNAL_DEPENDENCE: the fitted dependence from which white noise counts as "
                         "signal dependent (Poisson-Gaussian)",
              "split": "validation", "dependence": sets, "curve": curve, "chosen": float(chosen),
              "rule": "the fewest validation images misrouted (signal-dependent sets under the threshold, white "
                      "Gaussian sets at or above it); among ties the largest margin in log ratio to the nearest "
                      "correctly routed image",
              **origin(commit, shlex.join(["python3", *sys.argv]))}
    write_json(args.out, record)
    print(f"chosen {chosen} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
