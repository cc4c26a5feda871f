"""Classical baselines: non-local means (scikit-image) and BM3D (optional ``bm3d`` extra), and
noise-level estimation. Images are float arrays in [0, 1], (H, W) or (H, W, C); sigma in 0-255 units."""
from __future__ import annotations

import numpy as np

from .errors import MissingDependencyError


def estimate_sigma(image: np.ndarray, method: str = "pca", stride: int = 1) -> float:
    """Noise standard deviation in 0-255 units, averaged over channels.

    ``pca`` (default): the patch-PCA estimator of Chen, Zhu & Heng (ICCV 2015, "An efficient statistical
    method for image noise level estimation"): the noise variance is the mean of the smallest eigenvalues
    of the patch covariance, chosen as the largest tail whose mean equals its median. It is robust to
    texture and finds a usable level on real, in-camera processed noise. ``wavelet``: scikit-image's
    ``estimate_sigma`` (Donoho's MAD of the finest diagonal wavelet band), which under-estimates
    spatially correlated noise (about 0.3/255 on PolyU JPEGs).

    ``stride`` > 1 estimates on the pixel-shuffle sub-images ``image[i::stride, j::stride]``, which breaks
    the spatial correlation of real camera noise (PolyU: stride 3 finds 2-7/255 where the noisy-minus-mean
    residual is 2-5/255) but over-estimates white noise on textured images: keep 1 for synthetic noise.
    """
    img = np.asarray(image, dtype=np.float64)
    if stride > 1:
        subs = [img[i::stride, j::stride] for i in range(stride) for j in range(stride)]
        return float(np.mean([estimate_sigma(s, method) for s in subs[:: max(1, len(subs) // 4)]]))
    if img.ndim == 2:
        img = img[..., None]
    if method == "wavelet":
        from skimage.restoration import estimate_sigma as sk_estimate

        return float(sk_estimate(img, channel_axis=-1, average_sigmas=True)) * 255.0
    if method != "pca":
        raise ValueError(f"unknown sigma estimator '{method}' (pca, wavelet)")
    return float(np.mean([_pca_sigma(img[..., c]) for c in range(img.shape[-1])])) * 255.0


def _pca_sigma(channel: np.ndarray, patch: int = 7, max_patches: int = 60000) -> float:
    from numpy.lib.stride_tricks import sliding_window_view

    if min(channel.shape) < patch:
        patch = max(2, min(channel.shape))
    windows = sliding_window_view(channel, (patch, patch)).reshape(-1, patch * patch)
    if len(windows) > max_patches:  # a deterministic, even subsample keeps it fast on large images
        windows = windows[np.linspace(0, len(windows) - 1, max_patches).astype(np.int64)]
    x = windows - windows.mean(axis=0)
    eig = np.sort(np.linalg.eigvalsh(x.T @ x / len(x)))  # ascending
    eig = np.clip(eig, 0.0, None)
    # Largest m such that mean(eig[:m]) and median(eig[:m]) agree: those m are noise-only directions.
    for m in range(len(eig), 0, -1):
        tail = eig[:m]
        if tail.mean() <= np.median(tail) + 1e-12 or m == 1:
            return float(np.sqrt(tail.mean()))
    return float(np.sqrt(eig[0]))


def _resolve_sigma(image: np.ndarray, sigma: float | None) -> float:
    return estimate_sigma(image) if sigma is None else float(sigma)


def nlm(image: np.ndarray, sigma: float | None = None, *, h_factor: float = 0.8, patch_size: int = 5,
        patch_distance: int = 6) -> np.ndarray:
    """Non-local means as benchmarked: scikit-image fast mode, h = 0.8 sigma, 5x5 patches,
    13x13 search window. Exactly ``skimage.restoration.denoise_nl_means`` with those arguments."""
    from skimage.restoration import denoise_nl_means

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
