"""Select the NLM strength and the Wiener passes of zero-shot's camera-noise route on validation photos.

    PYTHONPATH=src python3 benchmarks/select_camera_wiener.py --data ../shared/data [--configs 1.4:1,1.6:1 --out F]

The route (``benchmarks/select_camera_route.py`` chose it): non-local means on the whole photo with the
level estimated on stride-3 sub-images, ``h = H * level``, pilots ``P`` collaborative Wiener passes
(window 51) on the 3x3 pixel-shuffled sub-images, and the result is averaged with that NLM output at weight
``b``. On every validation photo of ``real-polyu`` and ``real-nam`` (never a test photo) it runs each
``(H, P)`` of ``CONFIGS`` and scores each ``b`` of ``BLENDS``; writes
``benchmarks/selection/camera-wiener.json`` with the mean PSNR per protocol, the Wiener seconds per photo and
the choice: the highest PSNR averaged over the two protocols' means.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from selfdenoise.bench import write_json
from selfdenoise.bench.protocols import PROTOCOLS, find_test_images, test_pair
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.classical.baselines import nlm_tiled
from selfdenoise.classical.wiener import refine_estimate
from selfdenoise.core import metrics
from selfdenoise.core.pixel_shuffle import pd_down, pd_up
from selfdenoise.methods.zero_shot import CORRELATED_SHUFFLE, NETWORK_TILE, ZeroShot

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ((0.8, 1), (1.0, 1), (1.2, 1), (1.0, 2))  # (NLM h over the level, Wiener passes)
BLENDS = (0.3, 0.4, 0.5)
WINDOW = 51


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--protocols", default="real-polyu,real-nam")
    ap.add_argument("--configs", default=",".join(f"{h}:{p}" for h, p in CONFIGS), help="H:PASSES,...")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "selection" / "camera-wiener.json")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    psnr: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, list[float]] = {}
    f = CORRELATED_SHUFFLE
    configs = [(float(h), int(p)) for h, p in (c.split(":") for c in args.configs.split(","))]
    for name in args.protocols.split(","):
        proto = PROTOCOLS[name]
        test_set = proto.test_set(None, "validation")
        for item in find_test_images(args.data, test_set):
            clean, noisy = test_pair(test_set, item, proto.seed)
            x = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32)).permute(2, 0, 1)[None]
            level = ZeroShot().resolve(x).sigma
            score = lambda t: metrics.evaluate_pair(clean, t[0].permute(1, 2, 0).clamp(0, 1).numpy(),
                                                    test_set.metric)["psnr"]
            subs, nlm = pd_down(x, f), {}
            for h, passes in configs:
                if h not in nlm:
                    nlm[h] = nlm_tiled(x, level, NETWORK_TILE, h_factor=h)
                    psnr.setdefault(name, {}).setdefault(f"nlm h {h}", []).append(score(nlm[h]))
                t = time.perf_counter()
                pilot = pd_down(nlm[h], f)
                out = torch.cat([refine_estimate(subs[k:k + 1], pilot[k:k + 1], passes, window=WINDOW, features=8)
                                 for k in range(len(subs))])
                out = pd_up(out, f, x.shape[-2:])
                seconds.setdefault(f"{passes} passes", []).append(time.perf_counter() - t)
                for b in BLENDS:
                    key = f"h {h}, {passes} passes, blend {b}"
                    psnr[name].setdefault(key, []).append(score((1 - b) * out + b * nlm[h]))
            print(name, item.name, flush=True)
    summary = {name: {k: float(np.mean(v)) for k, v in rows.items()} for name, rows in psnr.items()}
    mean = {k: float(np.mean([s[k] for s in summary.values()])) for k in next(iter(summary.values()))}
    chosen = max((k for k in mean if k.startswith("h ")), key=mean.get)
    record = {"what": "NLM h and Wiener passes of zero-shot's camera-noise route (window 51)", "split": "validation",
              "psnr": summary, "mean_over_protocols": mean, "n_images": {k: len(next(iter(v.values()))) for k, v in psnr.items()},
              "wiener_seconds_per_photo": {k: float(np.mean(v)) for k, v in seconds.items()}, "chosen": chosen,
              "rule": "highest PSNR averaged over the protocols' validation means",
              **origin(commit, shlex.join(["python3", *sys.argv]))}
    path = write_json(args.out, record)
    print(f"chosen: {chosen} ({mean[chosen]:.3f} dB) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
