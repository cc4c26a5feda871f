"""The public Python API. The CLI is a thin wrapper over these functions."""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from . import io, registry
from .errors import InputError


def as_float_image(image, name: str = "image") -> tuple[np.ndarray, bool]:
    """Validate a user array and give float32 (H, W, C) in [0, 1] plus whether it was 2-D.

    uint8 and uint16 arrays are scaled by their full range; float arrays are taken as they are
    (nominally [0, 1]; noisy values slightly outside are fine)."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    elif arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float32)
    elif not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{name}: unsupported data type {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise InputError(f"{name}: expected an HxW or HxWxC array, got shape {arr.shape}")
    gray_2d = arr.ndim == 2
    if gray_2d:
        arr = arr[..., None]
    if arr.shape[-1] == 4:
        warnings.warn(f"{name}: alpha channel dropped", stacklevel=3)
        arr = arr[..., :3]
    if arr.shape[-1] not in (1, 3):
        raise InputError(f"{name}: expected 1 or 3 channels, got {arr.shape[-1]}")
    if min(arr.shape[:2]) < io.MIN_SIDE:
        raise InputError(f"{name}: image is {arr.shape[0]}x{arr.shape[1]}; at least "
                         f"{io.MIN_SIDE}x{io.MIN_SIDE} pixels are needed")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: contains NaN/Inf values")
    return np.ascontiguousarray(arr, dtype=np.float32), gray_2d


def _parse_sigma(sigma) -> float | None:
    if sigma is None or (isinstance(sigma, str) and sigma.strip().lower() == "auto"):
        return None
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise InputError(f"sigma must be a number in 0-255 units or 'auto', got {sigma!r}") from None
    if not np.isfinite(value) or value < 0:
        raise InputError(f"sigma must be a non-negative number in 0-255 units, got {sigma!r}")
    return value


def denoise(image, method: str = "zero-shot", *, sigma: float | str | None = "auto", seed: int = 0,
            tile: int | None = None, progress: bool = False, **options) -> np.ndarray:
    """Denoise one image (H, W) or (H, W, C) in [0, 1] (uint8/uint16 arrays are scaled).

    ``method``: ``zero-shot`` (default; fits a small network to this image alone), ``nlm``, ``bm3d``.
    ``sigma`` (0-255 units) is used by the classical methods; ``"auto"`` estimates it.
    ``options`` go to the method (e.g. ``budget=30`` seconds for zero-shot).
    Returns float32 in [0, 1], the same shape as the input.
    """
    img, gray_2d = as_float_image(image)
    s = _parse_sigma(sigma)
    if registry.is_classical(method):
        fn = registry.get_classical(method)
        out = fn(img, sigma=s, **registry.check_options(method, options))
    else:
        m = registry.get_method(method, **({"tile": tile} if tile else {}), **options)
        if not getattr(m, "zero_shot", False):
            raise InputError(f"method '{method}' needs a trained model (--model FILE)")
        x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
        y = m.fit_denoise(x, seed=seed, progress=progress)
        out = y[0].permute(1, 2, 0).detach().cpu().numpy()
    out = np.clip(np.asarray(out, dtype=np.float32).reshape(img.shape), 0.0, 1.0)
    return out[..., 0] if gray_2d else out


def add_noise(image, spec: str, seed: int = 0) -> np.ndarray:
    """Add seeded synthetic noise from a spec string (``gauss:25``, ``poisson:30``, ...). Unclipped."""
    from .noise import add_noise as _add

    img = np.asarray(image)
    if img.dtype in (np.uint8, np.uint16):
        img, gray = as_float_image(img)
        img = img[..., 0] if gray else img
    return _add(img, spec, seed=seed)


def evaluate(clean, test) -> dict:
    """PSNR, SSIM, EPI (ratio and correlation forms) and GCMSE of ``test`` against ``clean``,
    computed on uint8-quantised images as in the benchmark protocol."""
    from .metrics import evaluate_pair

    a, _ = as_float_image(clean, "clean")
    b, _ = as_float_image(test, "test")
    if a.shape != b.shape:
        raise InputError(f"clean and test differ in shape: {a.shape} vs {b.shape}")
    return evaluate_pair(a, b)


def estimate_sigma(image, stride: int = 1) -> float:
    """Noise level in 0-255 units (patch-PCA estimator; see ``classical.estimate_sigma``)."""
    from .classical import estimate_sigma as _est

    img, _ = as_float_image(image)
    return _est(img, stride=stride)


def output_paths(inputs: list[str | os.PathLike], output: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Pair each input file with its output path. One input file and an output with an image suffix
    give that file; otherwise ``output`` is a folder and each result keeps its input's name."""
    files: list[Path] = []
    for p in inputs:
        files.extend(io.list_images(p))
    out = Path(output)
    if len(files) == 1 and len(inputs) == 1 and not Path(inputs[0]).is_dir() and out.suffix:
        if out.suffix.lower() not in io.IMAGE_SUFFIXES:
            raise InputError(f"{out}: unsupported output format '{out.suffix}'")
        return [(files[0], out)]
    if out.suffix.lower() in io.IMAGE_SUFFIXES:
        raise InputError(f"{out}: several inputs need an output folder, not a file name")
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise InputError(f"{out}: inputs from different folders share file names; denoise them separately")
    return [(f, out / f.name) for f in files]


def denoise_file(src: str | os.PathLike, dst: str | os.PathLike, method: str = "zero-shot", *,
                 progress: bool = False, **kwargs) -> dict:
    """Read ``src``, denoise it (a multi-page stack slice by slice) and write ``dst`` atomically in the
    input's dtype, channels and range. Returns {"input", "output", "seconds", "slices"}."""
    t0 = time.perf_counter()
    img, info = io.read_image(src)
    if info.stack:
        from tqdm import tqdm

        slices = [denoise(s, method, progress=False, **kwargs)
                  for s in tqdm(img, desc=Path(src).name, unit="slice", disable=not progress, leave=False)]
        out = np.stack([s if s.ndim == 3 else s[..., None] for s in slices])
    else:
        out = denoise(img, method, progress=progress, **kwargs)
        out = out if out.ndim == 3 else out[..., None]
    io.ensure_parent(dst)
    io.write_image(dst, out, info)
    return {"input": str(src), "output": str(dst), "seconds": time.perf_counter() - t0,
            "slices": len(img) if info.stack else 1}
