"""Classical baselines: non-local means (scikit-image) and BM3D (the optional ``bm3d`` extra). Images are
float arrays in [0, 1], (H, W) or (H, W, C); sigma in 0-255 units; when neither it nor a noise model is
given, the noise the image has is estimated from it (``with_estimated_noise``)."""
from __future__ import annotations

import numpy as np
import torch
from skimage.restoration import denoise_nl_means
from torch import Tensor

from ..core.errors import InputError, MissingDependencyError
from ..core.noise import NoiseChain, parse_noise
from ..core.tiling import apply_tiled
from .noise_level import BIN_SPREAD, SIGNAL_DEPENDENCE, estimated_noise
from .vst import vst_denoise


def with_estimated_noise(white_denoiser, image: np.ndarray, *,
                         dependence_threshold: float = SIGNAL_DEPENDENCE, spread: str = BIN_SPREAD) -> np.ndarray:
    """Run ``white_denoiser(image, sigma_255)`` for the noise the image really has, estimated from it:
    spatially correlated (real camera noise) -> one level estimated on stride-3 pixel-shuffle sub-images;
    white and signal dependent (fluorescence, raw sensor data: fitted ``dependence`` at least
    ``dependence_threshold``; ``spread`` of ``noise_level.estimate_poisson_gaussian``) -> the fitted
    Poisson-Gaussian model through the generalized Anscombe VST;
    white and signal independent -> one level estimated on the image."""
    sigma, _, model = estimated_noise(image, dependence_threshold=dependence_threshold, spread=spread)
    if model is not None:
        gain, read, mu = model
        return vst_denoise(white_denoiser, image, gain=gain, sigma=read, mu=mu)
    return white_denoiser(image, sigma)


def with_noise_model(white_denoiser, image: np.ndarray, sigma: float | None, noise: str | None) -> np.ndarray:
    """Run a white-Gaussian ``white_denoiser(image, sigma_255)`` as the field does for the noise the image
    has: ``noise`` None -> ``sigma``, or when that is None too the noise estimated from the image
    (``with_estimated_noise``); ``gauss:S`` -> sigma S; Poisson (``poisson:L``) and
    Poisson-Gaussian (``poisson:L+gauss:S``) -> through the generalized Anscombe transform and its exact
    unbiased inverse (``vst.vst_denoise``, Makitalo & Foi), with those parameters."""
    if noise is None:
        return with_estimated_noise(white_denoiser, image) if sigma is None else white_denoiser(image, float(sigma))
    model = parse_noise(noise)
    parts = model.parts if isinstance(model, NoiseChain) else (model,)
    kinds = {p.kind: p for p in parts}
    if len(kinds) != len(parts) or set(kinds) - {"gauss", "poisson"} or any(p.low != p.high for p in parts):
        raise InputError(f"noise '{model.spec}': the classical methods take gauss:S, poisson:L or poisson:L+gauss:S "
                         "with fixed values")
    read = kinds["gauss"].low if "gauss" in kinds else 0.0
    if "poisson" not in kinds:
        return white_denoiser(image, read if sigma is None else float(sigma))
    return vst_denoise(white_denoiser, image, photons=kinds["poisson"].low, sigma=read / 255.0)


def nlm(image: np.ndarray, sigma: float | None = None, *, noise: str | None = None, h_factor: float = 0.8,
        patch_size: int = 5, patch_distance: int = 6) -> np.ndarray:
    """Non-local means as benchmarked: scikit-image fast mode, h = 0.8 sigma, 5x5 patches,
    13x13 search window. Exactly ``skimage.restoration.denoise_nl_means`` with those arguments.
    ``noise``: the image's noise model when known (see ``with_noise_model``)."""
    white = lambda img, s255: _nlm(img, s255, h_factor, patch_size, patch_distance)  # noqa: E731
    return with_noise_model(white, image, sigma, noise)


def nlm_tiled(x: Tensor, sigma: float, tile: int, overlap: int = 32, h_factor: float = 0.8) -> Tensor:
    """``nlm`` (its patch and search sizes) of ``x`` (1, C, H, W) with the level ``sigma`` (0-255) and
    ``h = h_factor * sigma``, run on tiles of at most
    ``tile`` pixels a side so that a 24-MP photo costs a tile's memory; a pixel's output depends on the
    pixels within 8 of it (5x5 patches, 13x13 search), so ``overlap`` >= 8 leaves the result as untiled
    but for the ramps where tiles are blended."""
    def run(t: Tensor) -> Tensor:
        out = _nlm(t[0].permute(1, 2, 0).numpy(), sigma, h_factor, 5, 6)
        return torch.from_numpy(out.reshape(t.shape[2], t.shape[3], -1)).permute(2, 0, 1)[None]

    return apply_tiled(run, x.float(), tile, overlap=overlap)


def _nlm(image: np.ndarray, sigma: float, h_factor: float, patch_size: int, patch_distance: int) -> np.ndarray:
    s = float(sigma) / 255.0
    img = np.asarray(image, dtype=np.float32)
    out = denoise_nl_means(img, h=h_factor * s, sigma=s, patch_size=patch_size, patch_distance=patch_distance,
                           fast_mode=True, channel_axis=-1 if img.ndim == 3 else None)
    return np.asarray(out, dtype=np.float32).reshape(img.shape)  # scikit-image drops a single channel


def bm3d(image: np.ndarray, sigma: float | None = None, *, noise: str | None = None) -> np.ndarray:
    """BM3D (gray) or CBM3D (colour, ``bm3d.bm3d_rgb``) from the ``bm3d`` package with the given sigma
    (0-255 units). The package is non-commercial: install it with ``pip install 'selfdenoise[bm3d]'``.
    ``noise``: the image's noise model when known (see ``with_noise_model``)."""
    return with_noise_model(_bm3d, image, sigma, noise)


def _bm3d_package(what: str = "method 'bm3d'"):
    try:
        import bm3d as bm3d_lib
    except ImportError:
        raise MissingDependencyError(f"{what} needs the optional bm3d package: pip install 'selfdenoise[bm3d]'") from None
    return bm3d_lib


def bm3d_wiener(noisy: Tensor, pilot: Tensor, sigma: float, passes: int = 1) -> Tensor:
    """BM3D's own second stage (the bm3d package's collaborative Wiener filtering) of a gray ``noisy``
    (1, H, W) in [0, 1] with ``pilot`` as its basic estimate, ``passes`` times (each result the next pilot);
    ``sigma``: the noise standard deviation in [0, 1] units."""
    if noisy.shape[0] != 1:
        raise InputError(f"BM3D's Wiener stage refines gray images here, not {noisy.shape[0]} channels")
    lib = _bm3d_package("refine_filter=bm3d")
    z, estimate = noisy[0].double().cpu().numpy(), pilot[0].double().cpu().numpy()
    for _ in range(passes):
        estimate = lib.bm3d(z, float(sigma), stage_arg=estimate)
    return torch.from_numpy(np.asarray(estimate, np.float32))[None].to(noisy.device)


def _bm3d(image: np.ndarray, sigma: float) -> np.ndarray:
    bm3d_lib = _bm3d_package()
    s = float(sigma) / 255.0
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3 and img.shape[-1] == 3:
        out = bm3d_lib.bm3d_rgb(img, s)
    else:
        out = bm3d_lib.bm3d(img[..., 0] if img.ndim == 3 else img, s)
        out = out[..., None] if img.ndim == 3 else out
    return np.asarray(out, dtype=np.float32)
