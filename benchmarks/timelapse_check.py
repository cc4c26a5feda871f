"""A no-reference check on a real time-lapse: which method predicts the next noisy frame best.

    PYTHONPATH=src python3 benchmarks/timelapse_check.py --data ../shared/data --minutes 3

``lysosome_timelapse`` (4 confocal stacks of 50 frames, TYX, live cells; no clean reference). ``n2n`` is trained
by ``selfdenoise train`` on stacks 1-3 with neighbouring frames as pairs (``--axes TYX`` is read from their
ImageJ metadata; each pair aligned by integer shifts), then stack 4 is scored, frame by frame, by the
Noise2Noise criterion: the mean squared difference between a method's output for frame t and the noisy frame
t+1. The next frame's noise is independent of frame t, so the criterion is the error against the next clean
frame plus a constant (its noise variance) plus the motion between the frames, the same for every method:
lower is better, and the ranking is that of the errors, up to that motion. Methods: the noisy frame itself,
NLM and BM3D with their estimated noise, the default zero-shot (each frame alone), and the ``n2n`` model.
Writes ``benchmarks/results/lysosome-timelapse.json``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from large_photos import timed

from selfdenoise import api
from selfdenoise.bench import write_json
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.core.io import read_image

ROOT = Path(__file__).resolve().parent.parent


def next_frame_mse(frames: np.ndarray, denoise, count: int) -> dict:
    """Mean over the first ``count`` frames t of mean((denoise(frame t) - frame t+1)^2), in [0, 1] units^2."""
    scores, t0 = [], time.perf_counter()
    for t in range(count):
        out = np.asarray(denoise(frames[t]), dtype=np.float64)
        scores.append(float(np.mean((out - frames[t + 1]) ** 2)))
    return {"next_frame_mse": float(np.mean(scores)), "per_frame": scores,
            "seconds_per_frame": (time.perf_counter() - t0) / count}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--frames", type=int, default=12, help="Frames of stack 4 scored (each against the next).")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    folder = args.data / "lysosome_timelapse"
    stack, info = read_image(folder / "4.tif")
    frames = stack[..., 0]
    with tempfile.TemporaryDirectory() as tmp:
        train = Path(tmp) / "train"
        train.mkdir()
        for k in (1, 2, 3):
            (train / f"{k}.tif").symlink_to((folder / f"{k}.tif").resolve())
        model = Path(tmp) / "n2n.sdm"
        cmd = [sys.executable, "-m", "selfdenoise", "train", "-m", "n2n", "--data", str(train), "-o", str(model),
               "--minutes", f"{args.minutes:g}", "--axes", "TYX", "--seed", "0", "--device", "cpu", "-q"]
        training = timed(cmd)
        trained = api.load_model(model)
        methods = {
            "noisy": lambda f: f,
            "nlm": lambda f: api.denoise(f, "nlm"),
            "bm3d": lambda f: api.denoise(f, "bm3d"),
            "zero-shot": lambda f: api.denoise(f),
            "n2n (neighbouring frames)": lambda f: trained.denoise(f),
        }
        scores = {}
        for name, fn in methods.items():
            scores[name] = next_frame_mse(frames, fn, args.frames)
            print(name, f"{scores[name]['next_frame_mse']:.3e}", f"{scores[name]['seconds_per_frame']:.2f} s",
                  flush=True)
    record = {"what": "no-reference check on lysosome_timelapse stack 4: mean squared difference between a method's "
                      "output for frame t and the noisy frame t+1 (lower is better)",
              "split": "no reference; nothing is selected on it", "frames": args.frames, "stack": info.axes,
              "train": {"command": shlex.join(["selfdenoise", *cmd[3:]]), "stacks": [1, 2, 3], **training},
              "methods": scores, **origin(commit, shlex.join(["python3", *sys.argv]))}
    write_json(ROOT / "benchmarks" / "results" / "lysosome-timelapse.json", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
