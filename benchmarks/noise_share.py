"""How much of the noise a trained model lets through, on validation images (a diagnostic, never a result).

For each model and each McMaster image (``gauss25-color``'s validation split) with white Gaussian noise n of
``--sigma`` (seeded), the output error e = f(x + n) - x is split into its projection on the noise,
``share`` = <e, n> / <n, n> (0: none of the noise is left, 1: the identity), and the rest. Reports the mean
PSNR, the mean share and the PSNR the same outputs would have without that share (``psnr_without_share``).

    PYTHONPATH=src python benchmarks/noise_share.py --data ../shared/data zoo:gauss-color ne2ne.sdm
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from selfdenoise import api, bench
from selfdenoise.bench.provenance import origin
from selfdenoise.core import metrics
from selfdenoise.core.io import read_image


def noise_share(model, clean: np.ndarray, sigma: float, seed: int) -> dict:
    """PSNR, share of the noise passed through and PSNR without that share, for one image."""
    noise = np.random.default_rng(seed).normal(0.0, sigma / 255, clean.shape).astype(np.float32)
    error = model.denoise(clean + noise, tta=1) - clean
    share = float((error * noise).sum() / (noise * noise).sum())
    return {"psnr": metrics.psnr(clean, clean + error), "share": share,
            "psnr_without_share": metrics.psnr(clean, clean + error - share * noise)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="model files or zoo:NAME")
    ap.add_argument("--data", required=True)
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--out", default="benchmarks/results/noise-share.json")
    args = ap.parse_args(argv)
    files = sorted(p for p in (Path(args.data) / "mcmaster").iterdir() if p.suffix in (".tif", ".png"))
    result = {**origin(bench.git_commit(), "python " + " ".join(sys.argv)), "sigma": args.sigma,
              "images": [f.name for f in files], "models": {}}
    for name in args.models:
        model = api.load_model(name)
        rows = [noise_share(model, read_image(f)[0], args.sigma, seed) for seed, f in enumerate(files)]
        result["models"][name] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        print(name, json.dumps(result["models"][name]), flush=True)
    bench.write_json(args.out, result)


if __name__ == "__main__":
    main()
