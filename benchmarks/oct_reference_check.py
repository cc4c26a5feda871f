"""How much of the remaining error on ``oct-duke`` is noise, and how much is the reference itself.

The protocol scores the denoised ``test.tif`` of subjects 10-18 against their ``average.tif``. This
script takes a trained model and, per test subject, reports:

- ``psnr``: the model on ``test.tif`` (as the protocol scores it: uint8, no test-time augmentation);
- ``psnr_five_repeats``: the mean of the model's outputs on all five repeats of that eye (``test.tif``,
  ``1.tif``..``4.tif``, each aligned to the first by ``data.frame_shift``), i.e. what five times the
  data buys once the noise is gone;
- ``reference_offset``: mean of ``average.tif`` minus mean of the five repeats, in grey levels (0..255):
  a brightness difference that is in the reference, not in any frame a denoiser sees;
- ``psnr_offset_removed``: the model's PSNR once that per-image mean difference to the reference is
  removed. This uses the reference, so it is a diagnostic only, never a result.

    PYTHONPATH=src python benchmarks/oct_reference_check.py --data ../shared/data \
        --model benchmarks/results/oct-n2n-30/oct-duke/n2n.sdm --out benchmarks/results/oct-reference-check
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from selfdenoise import api, bench
from selfdenoise.bench.provenance import origin
from selfdenoise.core import metrics
from selfdenoise.core.io import read_image
from selfdenoise.training.registration import frame_shift

REPEATS = ("test", "1", "2", "3", "4")


def aligned_mean(images: list[np.ndarray]) -> np.ndarray:
    """Mean of 2-D images aligned to the first by integer shifts; each pixel averages the images covering it."""
    h, w = images[0].shape
    total, count = np.zeros((h, w)), np.zeros((h, w))
    for img in images:
        dy, dx = frame_shift(torch.from_numpy(images[0])[None], torch.from_numpy(img)[None])
        dst = np.s_[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
        src = np.s_[max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
        total[dst] += img[src]
        count[dst] += 1
    return (total / count).astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    model = api.load_model(args.model)
    q = metrics.quantize_uint8
    rows = []
    for subject in range(10, 19):
        folder = args.data / "oct_duke_fang2013" / f"{subject:02d}"
        reference = read_image(folder / "average.tif")[0][..., 0]
        frames = [read_image(folder / f"{name}.tif")[0][..., 0] for name in REPEATS]
        outputs = [model.denoise(f, tta=1) for f in frames]
        offset = float(reference.mean() - np.mean([f.mean() for f in frames]))
        single = outputs[0]
        rows.append({"subject": f"{subject:02d}", "psnr": metrics.psnr(q(reference), q(single)),
                     "psnr_five_repeats": metrics.psnr(q(reference), q(aligned_mean(outputs))),
                     "reference_offset": round(offset * 255, 2),
                     "psnr_offset_removed": metrics.psnr(q(reference), q(single + float((reference - single).mean())))})
        print(rows[-1], flush=True)
    keys = ("psnr", "psnr_five_repeats", "psnr_offset_removed")
    command = "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    result = {**origin(bench.git_commit(), command), "model": str(args.model),
              "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys}, "per_subject": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    bench.write_json(args.out / "oct-reference-check.json", result)
    lines = ["# oct-duke: noise or reference?", "", f"- model: `{args.model}`", f"- command: `{result['command']}`",
             f"- commit: {result['commit']}", f"- device: {result['device']}", "",
             "| subject | PSNR | PSNR, mean of the 5 repeats denoised | reference offset (grey levels) | "
             "PSNR with the offset removed (diagnostic) |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['subject']} | {r['psnr']:.2f} | {r['psnr_five_repeats']:.2f} | {r['reference_offset']:+.1f} | "
              f"{r['psnr_offset_removed']:.2f} |" for r in rows]
    m = result["mean"]
    lines += [f"| mean | {m['psnr']:.2f} | {m['psnr_five_repeats']:.2f} | | {m['psnr_offset_removed']:.2f} |", ""]
    (args.out / "report.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
