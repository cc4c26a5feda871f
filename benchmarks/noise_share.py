"""How much of the noise a trained model lets through, on validation images (a diagnostic, never a result).

For each model and each image of a protocol's validation split (default ``gauss25-color``: McMaster, sigma 25,
the protocol's own seeded noise n), the output error e = f(x + n) - x is split into its projection on the noise,
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
from selfdenoise.bench.protocols import PROTOCOLS, find_test_images, test_pair
from selfdenoise.bench.provenance import origin
from selfdenoise.core.metrics import evaluate_pair

ROOT = Path(__file__).resolve().parent.parent


def noise_share(model, clean: np.ndarray, noisy: np.ndarray, metric: str) -> dict:
    """PSNR, share of the noise passed through and PSNR without that share, for one image."""
    noise = noisy - clean
    error = model.denoise(noisy, tta=1) - clean
    share = float((error * noise).sum() / (noise * noise).sum())
    return {"psnr": evaluate_pair(clean, clean + error, metric)["psnr"], "share": share,
            "psnr_without_share": evaluate_pair(clean, clean + error - share * noise, metric)["psnr"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="model files or zoo:NAME")
    ap.add_argument("--data", required=True)
    ap.add_argument("--protocol", default="gauss25-color")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "noise-share.json")
    args = ap.parse_args(argv)
    proto = PROTOCOLS[args.protocol]
    ts = proto.test_set(None, "validation")
    pairs = [test_pair(ts, item, proto.seed) for item in find_test_images(Path(args.data), ts)]
    result = {**origin(bench.git_commit(), "python " + " ".join(sys.argv)), "protocol": args.protocol,
              "dataset": ts.name, "split": "validation", "noise": ts.noise, "images": len(pairs), "models": {}}
    for name in args.models:
        model = api.load_model(name)
        rows = [noise_share(model, clean, noisy, ts.metric) for clean, noisy in pairs]
        result["models"][name] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        print(name, json.dumps(result["models"][name]), flush=True)
    bench.write_json(args.out, result)


if __name__ == "__main__":
    main()
