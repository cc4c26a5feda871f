"""Measure the cost model of zero-shot's plan (``methods.zero_shot``: ``STEP_SECONDS``, ``VIEW_SECONDS``,
each recipe's ``pass_seconds``, ``BASE_SECONDS``) on this machine, and record it.

    PYTHONPATH=src python3 benchmarks/zero_shot_costs.py [--megapixels 1.0]

The image is scikit-image's astronaut, tiled to the size asked for, with Gaussian noise (sigma 25): the
costs depend on the size, not on the content. Each figure is the median of ``--repeats`` runs, in seconds:
one adaptation step; one flip/rotation of the network over a megapixel; one Wiener pass over a megapixel
per search window with each recipe's groups (the shipped prior's, a zoo model's); and the rest of a run per
megapixel (noise-type test, copies, blending). Run it alone on the machine. Writes ``benchmarks/selection/zero-shot-costs.json``.
"""
from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from selfdenoise.bench import write_json
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.classical.wiener import refine_estimate
from selfdenoise.core.noise import add_noise
from selfdenoise.methods import zero_shot
from selfdenoise.methods.fitting import fit_single_image
from selfdenoise.methods.zero_shot import ZeroShot

ROOT = Path(__file__).resolve().parent.parent
#: the groups whose Wiener passes are priced, and the search windows each is measured at
RECIPES = {"shipped": zero_shot.SHIPPED_RECIPE, "zoo": zero_shot.ZOO_RECIPE}
WINDOWS = (19, 27, 51, 63)


def test_image(megapixels: float) -> torch.Tensor:
    from skimage import data

    tile = data.astronaut().astype(np.float32) / 255
    side = int(round((megapixels * 1e6) ** 0.5))
    reps = -(-side // tile.shape[0])
    clean = np.tile(tile, (reps, reps, 1))[:side, :side]
    noisy = add_noise(clean, "gauss:25", seed=0)
    return torch.from_numpy(noisy).permute(2, 0, 1)[None].contiguous()


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--megapixels", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "selection" / "zero-shot-costs.json")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    x = test_image(args.megapixels)
    mp = x.shape[-2] * x.shape[-1] / 1e6
    method = ZeroShot(tta=1, refine=0, shuffle=1)
    fit = lambda steps: fit_single_image(method, x, steps=steps, seed=0, lr=method.learning_rate)
    fit(5)  # warm-up: imports, allocator
    step = (median_seconds(lambda: fit(25), args.repeats) - median_seconds(lambda: fit(5), args.repeats)) / 20
    model = fit(0)
    view = median_seconds(lambda: method.denoise(model, x), args.repeats) / mp
    pilot = method.denoise(model, x)
    small = x[..., :512, :512].contiguous()
    small_pilot = pilot[..., :512, :512].contiguous()
    passes = {}
    for name, recipe in RECIPES.items():
        passes[name] = {}
        for window in WINDOWS:
            run = lambda: refine_estimate(small, small_pilot, 1, None, None, window=window, features=recipe.features,
                                          **recipe.groups())
            passes[name][window] = median_seconds(run, max(1, args.repeats - 1)) / (512 * 512 / 1e6)
    whole = median_seconds(lambda: ZeroShot(steps=0, tta=1, refine=0).fit_denoise(x), args.repeats)
    base = max(0.0, whole / mp - view)
    record = {"what": "zero-shot cost model (methods.zero_shot)", "megapixels": round(mp, 3),
              "STEP_SECONDS": round(step, 4), "VIEW_SECONDS": round(view, 3),
              "pass_seconds": {name: {str(w): round(v, 2) for w, v in by_window.items()}
                               for name, by_window in passes.items()}, "BASE_SECONDS": round(base, 3),
              "in_use": {"STEP_SECONDS": zero_shot.STEP_SECONDS, "VIEW_SECONDS": zero_shot.VIEW_SECONDS,
                         "pass_seconds": {name: dict(recipe.pass_seconds) for name, recipe in RECIPES.items()},
                         "BASE_SECONDS": zero_shot.BASE_SECONDS},
              "threads": torch.get_num_threads(),
              **origin(commit, shlex.join(["python3", *sys.argv]))}
    write_json(args.out, record)
    print({k: record[k] for k in ("STEP_SECONDS", "VIEW_SECONDS", "pass_seconds", "BASE_SECONDS")}, "->", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
