"""Scoring a folder of denoised images against a folder of clean ones (``selfdenoise eval``)."""
from __future__ import annotations

import os
from pathlib import Path

from ..core import metrics
from ..core.errors import InputError
from ..core.io import list_images, read_image
from .results import METRIC_KEYS, mean, write_json


def _stem_index(files: list[Path]) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for f in files:
        if f.stem in index:
            raise InputError(f"{f.parent}: two images share the name '{f.stem}' "
                             f"({index[f.stem].name}, {f.name}); cannot match by name")
        index[f.stem] = f
    return index


def evaluate_folders(clean: str | os.PathLike, test: str | os.PathLike,
                     json_path: str | os.PathLike | None = None) -> dict:
    """Score test images against clean ones, matched by file name without suffix (``x.png`` matches
    ``x.tif``). Either side may be a single file; two single files are paired whatever their names.
    Returns per-image psnr/ssim/epi/gcmse, their means and the unmatched names; writes it as JSON
    when ``json_path`` is given."""
    clean, test = Path(clean), Path(test)
    clean_files, test_files = list_images(clean), list_images(test)
    if clean.is_file() and test.is_file():
        pairs = [(clean_files[0], test_files[0])]
        unmatched_clean: list[str] = []
        unmatched_test: list[str] = []
    else:
        ci, ti = _stem_index(clean_files), _stem_index(test_files)
        names = [s for s in ci if s in ti]
        if not names:
            raise InputError(f"no image in {test} matches a name in {clean} "
                             f"(clean: {', '.join(list(ci)[:3])}...; test: {', '.join(list(ti)[:3])}...)")
        pairs = [(ci[s], ti[s]) for s in names]
        unmatched_clean = sorted(set(ci) - set(ti)) if test.is_dir() else []
        unmatched_test = sorted(set(ti) - set(ci)) if clean.is_dir() else []
    per_image = []
    for c_path, t_path in pairs:
        c, _ = read_image(c_path)
        t, _ = read_image(t_path)
        if c.shape != t.shape:
            raise InputError(f"{t_path}: shape {t.shape[0]}x{t.shape[1]}x{t.shape[-1]} differs from "
                             f"{c_path} ({c.shape[0]}x{c.shape[1]}x{c.shape[-1]})")
        scores = metrics.evaluate_pair(c, t)
        per_image.append({"name": c_path.stem, "clean": str(c_path), "test": str(t_path),
                          **scores})
    means = {k: mean(r[k] for r in per_image) for k in METRIC_KEYS}
    result = {"clean": str(clean), "test": str(test), "n_images": len(per_image), **means, "mean": means,
              "per_image": per_image, "unmatched_clean": unmatched_clean, "unmatched_test": unmatched_test}
    if json_path is not None:
        write_json(json_path, result)
    return result
