"""A one-minute demonstration on an image scikit-image ships (no image files in this package):
Gaussian noise sigma=25 on a 384x384 crop of ``skimage.data.astronaut()``, denoised by zero-shot,
non-local means and BM3D (when installed), with a labelled side-by-side ``comparison.png``.

The classical baselines are given the true sigma (25); the zero-shot method gets nothing but the noisy
image.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
from skimage import data

from .. import api
from ..core import metrics
from ..core.errors import MissingDependencyError
from ..core.io import write_image
from .provenance import PeakMemory, git_commit, origin
from .report import centre_crop, compose, write_report

NOISE = "gauss:25"
SIGMA = 25.0
#: (top, left, size) of the crop of the 512x512 astronaut image: face, helmet, flag and suit.
CROP = (0, 64, 384)
LABELS = {"zero-shot": "zero-shot", "nlm": "NLM", "bm3d": "BM3D"}


def demo_image() -> np.ndarray:
    """The clean demo image, float32 (384, 384, 3) in [0, 1]."""
    top, left, size = CROP
    img = data.astronaut()[top:top + size, left:left + size]
    return np.ascontiguousarray(img, dtype=np.float32) / 255.0


def run_demo(out_dir: str | os.PathLike = "selfdenoise-demo", seed: int = 0, progress: bool = True,
             budget: float | None = None) -> dict:
    """Write noisy.png, clean.png, <method>.png, comparison.png, report.md and report.html into
    ``out_dir``; print a small table; return ``{"out_dir", "results": {method: {psnr, ssim, seconds}},
    "skipped": {method: reason}, "files": [...]}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clean = demo_image()
    noisy = api.add_noise(clean, NOISE, seed=seed)
    plan = [("zero-shot", {} if budget is None else {"budget": float(budget)}, "auto"),
            ("nlm", {}, SIGMA), ("bm3d", {}, SIGMA)]
    files = [out / "clean.png", out / "noisy.png"]
    write_image(files[0], clean)
    write_image(files[1], np.clip(noisy, 0.0, 1.0))
    noisy_scores = metrics.evaluate_pair(clean, noisy)
    memory = PeakMemory()
    common = {"dataset": "astronaut 384x384 (scikit-image)", "n_images": 1, "noise": NOISE, "seed": seed,
              **origin(git_commit(), "selfdenoise demo"), "peak_memory_source": memory.source}
    results = {"noisy": {"method": "noisy", **common, **noisy_scores, "seconds_per_image": None}}
    outputs: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}
    for method, options, sigma in plan:
        if progress:
            print(f"running {method} ...", file=sys.stderr, flush=True)
        memory.start()
        t0 = time.perf_counter()
        try:
            result = api.denoise(noisy, method, sigma=sigma, seed=seed, progress=progress, **options)
        except MissingDependencyError as e:
            skipped[method] = str(e)
            if progress:
                print(f"skipping {method}: {e}", file=sys.stderr)
            continue
        seconds = time.perf_counter() - t0
        result = np.clip(np.asarray(result, dtype=np.float32).reshape(clean.shape), 0.0, 1.0)
        outputs[method] = result
        path = out / f"{method}.png"
        write_image(path, result)
        files.append(path)
        results[method] = {"method": method, **common, **metrics.evaluate_pair(clean, result),
                           "seconds_per_image": seconds, "peak_memory_mb": memory.peak_mb(), "sigma": sigma,
                           "options": options}

    def panels(crop: int | None):
        view = (lambda a: a) if crop is None else (lambda a: centre_crop(a, crop))
        items = [(f"noisy {results['noisy']['psnr']:.2f} dB", view(noisy))]
        items += [(f"{LABELS.get(m, m)} {results[m]['psnr']:.2f} dB", view(a)) for m, a in outputs.items()]
        items.append(("clean", view(clean)))
        return [(label, metrics.quantize_uint8(a)) for label, a in items]

    comparison = out / "comparison.png"
    write_image(comparison, compose(panels(None)).astype(np.float32) / 255.0)
    files.append(comparison)
    report = write_report(out, "demo", results, [{"name": "astronaut (centre)", "panels": panels(160)}],
                          title="selfdenoise demo: Gaussian noise sigma=25")
    files += [report["md"], report["html"]]

    table = {m: {"psnr": float(r["psnr"]), "ssim": float(r["ssim"]), "seconds": r["seconds_per_image"]}
             for m, r in results.items()}
    lines = [f"{'':10s} {'PSNR':>8s} {'SSIM':>7s} {'seconds':>8s}"]
    for m, r in table.items():
        sec = "" if r["seconds"] is None else f"{r['seconds']:8.1f}"
        lines.append(f"{LABELS.get(m, m):10s} {r['psnr']:8.2f} {r['ssim']:7.4f} {sec}")
    print("\n".join(lines))
    print(f"wrote {comparison} and the report in {out}")
    return {"out_dir": str(out), "results": table, "skipped": skipped, "files": [str(p) for p in files]}
