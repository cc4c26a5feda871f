"""Classical baselines: non-local means (scikit-image) and BM3D (the optional ``bm3d`` extra). Images are
float arrays in [0, 1], (H, W) or (H, W, C); sigma in 0-255 units, estimated when None."""
from __future__ import annotations

import numpy as np
from skimage.restoration import denoise_nl_means

from ..core.errors import MissingDependencyError
from .noise_level import estimate_sigma


def _resolve_sigma(image: np.ndarray, sigma: float | None) -> float:
    return estimate_sigma(image) if sigma is None else float(sigma)


def nlm(image: np.ndarray, sigma: float | None = None, *, h_factor: float = 0.8, patch_size: int = 5,
        patch_distance: int = 6) -> np.ndarray:
    """Non-local means as benchmarked: scikit-image fast mode, h = 0.8 sigma, 5x5 patches,
    13x13 search window. Exactly ``skimage.restoration.denoise_nl_means`` with those arguments."""
    s = _resolve_sigma(image, sigma) / 255.0
    img = np.asarray(image, dtype=np.float32)
    out = denoise_nl_means(img, h=h_factor * s, sigma=s, patch_size=patch_size, patch_distance=patch_distance,
                           fast_mode=True, channel_axis=-1 if img.ndim == 3 else None)
    return np.asarray(out, dtype=np.float32)


def bm3d(image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """BM3D (gray) or CBM3D (colour, ``bm3d.bm3d_rgb``) from the ``bm3d`` package with the given sigma
    (0-255 units). The package is non-commercial: install it with ``pip install 'selfdenoise[bm3d]'``."""
    try:
        import bm3d as bm3d_lib
    except ImportError:
        raise MissingDependencyError(
            "method 'bm3d' needs the optional bm3d package: pip install 'selfdenoise[bm3d]'") from None
    s = _resolve_sigma(image, sigma) / 255.0
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3 and img.shape[-1] == 3:
        out = bm3d_lib.bm3d_rgb(img, s)
    else:
        out = bm3d_lib.bm3d(img[..., 0] if img.ndim == 3 else img, s)
        out = out[..., None] if img.ndim == 3 else out
    return np.asarray(out, dtype=np.float32)
