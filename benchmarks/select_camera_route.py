"""Select zero-shot's route on real camera noise (its Wiener pilot and the NLM blend weight) on validation photos.

    PYTHONPATH=src python3 benchmarks/select_camera_route.py --data ../shared/data

On every validation photo of ``real-polyu`` and ``real-nam`` (never a test photo) it runs, unclipped:
the adapted network alone (``pilot=network refine=0``), the network piloting the Wiener passes on the
pixel-shuffled sub-images (the route before this selection), non-local means with the correlated-noise
level (``classical.baselines.nlm_tiled``, as ``nlm`` runs on such photos), and NLM piloting those passes
(``pilot=nlm``); then ``(1 - b) * route + b * NLM`` for each blend weight ``b`` (``nlm_blend=b`` computes
exactly that). Writes ``benchmarks/selection/camera-route.json``: mean PSNR and seconds per photo of each
variant per protocol, per-photo PSNRs, and the choice: the highest PSNR averaged over the two protocols'
means (each protocol counts once, whatever its number of photos).
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
from selfdenoise.core import metrics
from selfdenoise.methods.zero_shot import NETWORK_TILE, ZeroShot

ROOT = Path(__file__).resolve().parent.parent
BLENDS = (0.2, 0.3, 0.4, 0.5, 0.6)
#: zero-shot options of each variant that runs (the blends are computed from "nlm pilot" and "nlm")
VARIANTS = {"network alone": {"pilot": "network", "nlm_blend": 0, "refine": 0},
            "network pilot": {"pilot": "network", "nlm_blend": 0},
            "nlm pilot": {"pilot": "nlm", "nlm_blend": 0}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--protocols", default="real-polyu,real-nam")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "selection" / "camera-route.json")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    summary, photos = {}, []
    for name in args.protocols.split(","):
        proto = PROTOCOLS[name]
        test_set = proto.test_set(None, "validation")
        psnr: dict[str, list[float]] = {}
        seconds: dict[str, list[float]] = {}
        for item in find_test_images(args.data, test_set):
            clean, noisy = test_pair(test_set, item, proto.seed)
            x = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32)).permute(2, 0, 1)[None]
            outs = {}
            for variant, options in VARIANTS.items():
                t = time.perf_counter()
                outs[variant] = ZeroShot(**options).fit_denoise(x, seed=proto.seed)
                seconds.setdefault(variant, []).append(time.perf_counter() - t)
            t = time.perf_counter()
            outs["nlm"] = nlm_tiled(x, ZeroShot().resolve(x).sigma, NETWORK_TILE)
            seconds.setdefault("nlm", []).append(time.perf_counter() - t)
            for b in BLENDS:
                outs[f"nlm pilot, nlm_blend {b}"] = (1 - b) * outs["nlm pilot"] + b * outs["nlm"]
            row = {"protocol": name, "photo": item.name,
                   "noisy": metrics.evaluate_pair(clean, noisy, test_set.metric)["psnr"]}
            for variant, out in outs.items():
                image = out[0].permute(1, 2, 0).clamp(0, 1).numpy()
                row[variant] = metrics.evaluate_pair(clean, image, test_set.metric)["psnr"]
                psnr.setdefault(variant, []).append(row[variant])
            psnr.setdefault("noisy", []).append(row["noisy"])
            photos.append(row)
            print(name, item.name, {k: round(v, 2) for k, v in row.items() if isinstance(v, float)}, flush=True)
        summary[name] = {"dataset": test_set.name, "n_images": len(psnr["noisy"]),
                         "psnr": {k: float(np.mean(v)) for k, v in psnr.items()},
                         "seconds_per_image": {k: float(np.mean(v)) for k, v in seconds.items()}}
    candidates = [k for k in next(iter(summary.values()))["psnr"] if k != "noisy"]
    score = {k: float(np.mean([s["psnr"][k] for s in summary.values()])) for k in candidates}
    chosen = max(score, key=score.get)
    record = {"what": "zero-shot's route on real camera noise: Wiener pilot and NLM blend weight",
              "split": "validation", "summary": summary, "mean_over_protocols": score, "chosen": chosen,
              "rule": "highest PSNR averaged over the protocols' validation means", "photos": photos,
              **origin(commit, shlex.join(["python3", *sys.argv]))}
    path = write_json(args.out, record)
    print(f"chosen: {chosen} ({score[chosen]:.3f} dB) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
