"""PSNR against CPU seconds for ``--method self2self`` on whole test images of the single-image protocol.

Each image (Kodak24, Gaussian sigma 25 with the protocol's seeds: ``protocols.test_pair``) is fitted once, from a
fresh network or from a prior (``--init``, e.g. ``zoo:self2self-color``), by the library's own loop
(``methods.fitting.fit_single_image``). At each mark of ``--seconds`` of training the fit pauses and the dropout
ensemble (``passes`` predictions, the method's ``denoise``) is scored; the pause is not counted as training. A
point's ``seconds`` are what a run with that much training costs: training plus one ensemble (timed there);
``--budget`` runs give the training what the ensemble leaves, so a budget of B seconds lands near the mark of
B minus the ensemble time. Whole 768x512 images, the machine's threads (2 cores), as ``selfdenoise bench``.

    PYTHONPATH=src python3 benchmarks/self2self_curve.py --data ../shared/data --images kodim01,kodim03 \
        --seconds 30,60,120,300,600 --init zoo:self2self-color

Writes (merging, one entry per setting and image) benchmarks/results/single-image/self2self-curve.json.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from selfdenoise import api
from selfdenoise.bench import write_json
from selfdenoise.bench.protocols import PROTOCOLS, find_test_images, test_pair
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.core.metrics import evaluate_pair
from selfdenoise.core.params import parse_params
from selfdenoise.methods.fitting import fit_single_image
from selfdenoise.methods.self2self import Self2Self

OUT = Path(__file__).resolve().parent / "results" / "single-image" / "self2self-curve.json"


def curve(method: Self2Self, weights: dict | None, clean: np.ndarray, noisy: np.ndarray, marks: list[float],
          metric: str) -> list[dict]:
    """Points (training seconds, ensemble seconds, PSNR) at each mark of training time, the first at 0."""
    x = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1)))[None].float()
    torch.manual_seed(0)
    model = method.build_model(x.shape[1])
    if weights is not None:
        model.load_state_dict(weights)
    lr = method.learning_rate(from_prior=weights is not None)
    points, clock = [], {"trained": 0.0, "since": 0.0}  # "since": when the training clock last restarted

    def score(steps: int) -> None:
        t = time.perf_counter()
        out = method.denoise(model, x)[0].numpy().transpose(1, 2, 0)
        ensemble = time.perf_counter() - t
        psnr = evaluate_pair(clean, np.clip(out, 0, 1), metric)["psnr"]
        points.append({"train_seconds": round(clock["trained"], 1), "steps": steps,
                       "ensemble_seconds": round(ensemble, 1), "seconds": round(clock["trained"] + ensemble, 1),
                       "psnr": round(float(psnr), 3)})
        print(f"    {points[-1]}", flush=True)

    def on_step(step: int, net: torch.nn.Module) -> bool:  # points[k] is the mark marks[k - 1]
        clock["trained"] += time.perf_counter() - clock["since"]
        while len(points) <= len(marks) and clock["trained"] >= marks[len(points) - 1]:
            score(step)
            net.train()
        clock["since"] = time.perf_counter()
        return len(points) > len(marks)

    score(0)
    clock["since"] = time.perf_counter()
    fit_single_image(method, x, seconds=float("inf"), seed=0, lr=lr, model=model, on_step=on_step)
    return points


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--images", default="kodim01,kodim03", help="test images by name")
    ap.add_argument("--seconds", default="30,60,120,300,600", help="marks of training time")
    ap.add_argument("--init", default=None, help="a self2self model file or zoo:NAME to start from")
    ap.add_argument("-p", "--param", action="append", default=[], help="a Self2Self option KEY=VALUE")
    ap.add_argument("--exploratory", action="store_true", help="allow a dirty tree (results marked so)")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=args.exploratory)
    marks = sorted(float(s) for s in args.seconds.split(","))
    options = parse_params(args.param)
    method = Self2Self(**options)
    weights = api.load_model(args.init).network.state_dict() if args.init else None
    proto = PROTOCOLS["single-image"]
    ts = proto.test_set(None)
    wanted = args.images.split(",")
    items = [i for i in find_test_images(args.data, ts) if Path(i.name).stem in wanted]
    result = json.loads(OUT.read_text()) if OUT.is_file() else {}
    setting = ("init " + args.init if args.init else "from scratch") + "".join(f", {k}={v}" for k, v in options.items())
    runs = result.setdefault("runs", {})
    for item in items:
        clean, noisy = test_pair(ts, item, proto.seed)
        print(f"{setting}: {item.name} (noisy {evaluate_pair(clean, noisy, ts.metric)['psnr']:.2f} dB)", flush=True)
        runs[f"{setting} / {item.name}"] = {"setting": setting, "image": item.name, "options": options,
                                            "init": args.init, "points": curve(method, weights, clean, noisy, marks,
                                                                               ts.metric)}
        write_json(OUT, {**result, "what": "Self2Self: PSNR against CPU seconds per image (single-image protocol, "
                                           "Kodak24 sigma 25), training paused at each mark to score the ensemble",
                         "protocol": "single-image", "dataset": ts.name, "split": "test",
                         **origin(commit, shlex.join(["python3", *sys.argv]))})
    return 0


if __name__ == "__main__":
    sys.exit(main())
