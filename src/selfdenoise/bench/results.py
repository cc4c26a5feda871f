"""Result files: strict JSON written atomically, and means that skip missing values."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..core.io import atomic_write

#: Metrics averaged over the images of a run.
METRIC_KEYS = ("psnr", "ssim", "epi_ratio", "epi_correlation", "gcmse")


def json_safe(obj):
    """Copy of ``obj`` with NaN/Inf floats replaced by None (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def mean(values) -> float | None:
    """Mean ignoring None/NaN (an infinite PSNR of a perfect match stays infinite)."""
    vals = [float(v) for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else None


def write_json(path: str | os.PathLike, data) -> Path:
    """Write JSON atomically (temporary file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(json_safe(data), indent=2, allow_nan=False, default=str) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path


def sd(values) -> float | None:
    """Sample standard deviation ignoring None/NaN (None below two values)."""
    vals = [float(v) for v in values if v is not None and not math.isnan(v) and math.isfinite(v)]
    return float(np.std(vals, ddof=1)) if len(vals) > 1 else None


def add_paired_wins(results: dict[str, dict], baseline: str = "bm3d") -> None:
    """Add to each method's result the number of images on which its PSNR beats ``baseline``'s and the best
    peer's (``wins``: paired, same noisy input; peers are the methods whose result has ``peer``)."""
    peers = [m for m, r in results.items() if r.get("peer")]
    best_peer = max(peers, key=lambda m: results[m]["psnr"] or -math.inf) if peers else None
    for m, res in results.items():
        wins = {}
        for other in (baseline, best_peer):
            if other is None or other == m or other not in results:
                continue
            theirs = {r["name"]: r["psnr"] for r in results[other]["per_image"]}
            pairs = [(r["psnr"], theirs[r["name"]]) for r in res["per_image"] if r["name"] in theirs]
            wins[other] = {"wins": sum(a > b for a, b in pairs), "of": len(pairs)}
        res["wins"] = wins
