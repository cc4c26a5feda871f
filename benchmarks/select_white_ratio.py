"""Select ``noise_level.WHITE_RATIO`` -- the whiteness ratio above which noise counts as spatially
correlated -- on validation splits only, and record the decision.

    PYTHONPATH=src python3 benchmarks/select_white_ratio.py --data ../shared/data

The ratio (noise std on stride-3 sub-images over that on the image) decides two things: the stride of the
noise-level estimate the classical baselines use when no sigma is given, and whether ``refine="auto"`` runs
the Wiener passes. It is computed on the noisy validation images of the synthetic white-noise protocols
(Gaussian sigma 25, Poisson lambda 30) and of the real camera-noise protocols (PolyU, Nam), exactly as the
benchmark makes them. The threshold is the geometric mean of the largest white and the smallest camera
ratio when the two groups separate, else the value with the fewest misclassified images. The ratios of the
other validation sets (W2S widefield, a mixture) are recorded for information. No test image is read.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

from selfdenoise.bench import write_json
from selfdenoise.bench.protocols import PROTOCOLS, find_test_images, test_pair
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.classical.noise_level import WHITE_RATIO, whiteness_ratio

ROOT = Path(__file__).resolve().parent.parent
WHITE = ("gauss25-color", "poisson30-color", "gauss25-gray")
CAMERA = ("real-polyu", "real-nam")
OTHER = ("w2s-widefield",)


def validation_ratios(protocol: str, data: Path) -> dict[str, float]:
    proto = PROTOCOLS[protocol]
    ts = proto.test_set(None, "validation")
    return {item.name: round(whiteness_ratio(test_pair(ts, item, proto.seed)[1]), 4)
            for item in find_test_images(data, ts)}


def threshold(white: list[float], camera: list[float]) -> float:
    """The geometric mean of the gap between the groups, or the candidate with the fewest errors."""
    if max(white) < min(camera):
        return math.sqrt(max(white) * min(camera))
    candidates = sorted(white + camera)
    return min(candidates, key=lambda t: sum(w >= t for w in white) + sum(c < t for c in camera))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "selection" / "white-ratio.json")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    ratios = {p: validation_ratios(p, args.data) for p in (*WHITE, *CAMERA, *OTHER)}
    for p, r in ratios.items():
        print(f"{p}: {len(r)} images, ratio {min(r.values()):.2f}-{max(r.values()):.2f}", flush=True)
    white = [v for p in WHITE for v in ratios[p].values()]
    camera = [v for p in CAMERA for v in ratios[p].values()]
    chosen = round(threshold(white, camera), 2)
    record = {"setting": "noise_level.WHITE_RATIO", "split": "validation", "white_protocols": list(WHITE),
              "camera_protocols": list(CAMERA), "ratios": ratios,
              "white_range": [min(white), max(white)], "camera_range": [min(camera), max(camera)],
              "chosen": chosen, "previous": WHITE_RATIO,
              "rule": "geometric mean of the largest white-noise and the smallest camera-noise validation ratio "
                      "(the fewest misclassified images if the groups overlap)",
              **origin(commit, shlex.join(["python3", *sys.argv]))}
    write_json(args.out, record)
    print(f"white {min(white):.2f}-{max(white):.2f}, camera {min(camera):.2f}-{max(camera):.2f}: "
          f"chosen {chosen} (was {WHITE_RATIO}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
