"""Image quality metrics used by the benchmarks.

Images are numpy arrays shaped (H,W) or (H,W,C); both arguments must have the
same shape.

``data_range`` rule (when not given): both images uint8 -> 255; both floating
point -> 1.0; any other combination (mixed dtypes, other integer types) ->
InputError asking for an explicit ``data_range``.

Benchmark protocol (:func:`evaluate_pair`): outputs are clipped to [0, 1] and
quantised to uint8 before every metric is computed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from .errors import InputError

__all__ = [
    "quantize_uint8",
    "psnr",
    "ssim",
    "epi_ratio",
    "epi_correlation",
    "gcmse",
    "rmse",
    "affine_fit",
    "evaluate_pair",
    "METRIC_KINDS",
]

#: How a protocol scores an output: ``photo`` (uint8-quantised; PSNR, SSIM, EPI, GCMSE), ``scale-invariant``
#: (microscopy whose references are rescaled per file: the output is first fitted to the reference) or
#: ``float`` (clipped float images in [0, 1], data range 1; semi-synthetic volumes).
METRIC_KINDS = ("photo", "scale-invariant", "float")


def _pair(name: str, a, b, data_range: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate an image pair; return float64 copies and the resolved data range."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise InputError(f"{name}: images differ in shape, {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise InputError(f"{name}: expected shape (H,W) or (H,W,C), got {a.shape}")
    if a.size == 0:
        raise InputError(f"{name}: images are empty")
    if data_range is None:
        if a.dtype == np.uint8 and b.dtype == np.uint8:
            data_range = 255.0
        elif np.issubdtype(a.dtype, np.floating) and np.issubdtype(b.dtype, np.floating):
            data_range = 1.0
        else:
            raise InputError(
                f"{name}: cannot infer data_range for dtypes {a.dtype} and {b.dtype}; pass data_range"
            )
    data_range = float(data_range)
    if not (math.isfinite(data_range) and data_range > 0):
        raise InputError(f"{name}: data_range must be a positive number, got {data_range}")
    return a.astype(np.float64), b.astype(np.float64), data_range


def quantize_uint8(x) -> np.ndarray:
    """Clip to [0, 1] and round ``x * 255`` to uint8 (uint8 input is returned as a copy)."""
    arr = np.asarray(x)
    if arr.dtype == np.uint8:
        return arr.copy()
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InputError(f"quantize_uint8: expected a numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if np.isnan(arr).any():
        raise InputError("quantize_uint8: image contains NaN")
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def psnr(clean, test, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(range^2 / MSE)`` over all values.

    Identical images give ``inf``.
    """
    a, b, rng = _pair("psnr", clean, test, data_range)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(rng * rng / mse)


def ssim(clean, test, data_range: float | None = None) -> float:
    """Structural similarity, scikit-image with the Wang et al. 2004 settings.

    Gaussian window (sigma 1.5), population covariance; colour images are
    averaged over channels (``channel_axis=-1``). Needs H, W >= 7.
    """
    from skimage.metrics import structural_similarity

    a, b, rng = _pair("ssim", clean, test, data_range)
    if min(a.shape[0], a.shape[1]) < 7:
        raise InputError(f"ssim: image {a.shape} is too small (need at least 7x7)")
    kwargs = dict(
        data_range=rng, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    if a.ndim == 3:
        kwargs["channel_axis"] = -1
    return float(structural_similarity(a, b, **kwargs))


def _abs_diff_sum(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x, axis=0)).sum() + np.abs(np.diff(x, axis=1)).sum())


def epi_ratio(ref, test) -> float:
    """Edge Preservation Index, ratio form (Sattar et al., IEEE TIP 1997).

    ``sum |grad test| / sum |grad ref|`` where the gradients are absolute
    differences between horizontal and vertical neighbours (both summed, all
    channels). ``ref`` is the clean image or, in OCT practice, the noisy one.
    1 means the same edge energy; smoothing gives < 1. Scale invariant with
    respect to a shared data range.
    """
    a, b, _ = _pair("epi_ratio", ref, test, 1.0)
    den = _abs_diff_sum(a)
    num = _abs_diff_sum(b)
    if den == 0.0:
        return 1.0 if num == 0.0 else math.inf
    return num / den


def _laplacian(x: np.ndarray) -> np.ndarray:
    """3x3 four-neighbour Laplacian on the interior pixels (no border padding)."""
    return (
        x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:] - 4.0 * x[1:-1, 1:-1]
    )


def epi_correlation(ref, test) -> float:
    """Edge Preservation Index, correlation form (Sattar et al., IEEE TIP 1997).

    ``G(dS - mean dS, ds - mean ds) / sqrt(G(dS - mean, dS - mean) * G(ds - mean, ds - mean))``
    with ``d`` the 3x3 Laplacian [[0,1,0],[1,-4,1],[0,1,0]] evaluated on interior
    pixels, ``G(a, b) = sum a*b`` over all pixels and channels, S = ref, s = test.
    1 for identical edges; NaN when either high-pass image is constant.
    """
    a, b, _ = _pair("epi_correlation", ref, test, 1.0)
    if min(a.shape[0], a.shape[1]) < 3:
        raise InputError(f"epi_correlation: image {a.shape} is too small (need at least 3x3)")
    da = _laplacian(a)
    db = _laplacian(b)
    da = da - da.mean()
    db = db - db.mean()
    den = math.sqrt(float((da * da).sum()) * float((db * db).sum()))
    if den == 0.0:
        return math.nan
    return float((da * db).sum()) / den


def gcmse(
    ref,
    test,
    kappa: float = 0.5,
    option: int = 1,
    data_range: float | None = None,
    return_weight: bool = False,
):
    """Gradient-Conduction Mean Square Error (Lopez-Randulfe et al., ICIT 2017).

    Both images are normalised by ``data_range`` (to [0, 1]). Perona-Malik
    conduction ``c = exp(-(g/kappa)^2)`` (option 1) or ``1/(1+(g/kappa)^2)``
    (option 2) is computed from the reference's south and east neighbour
    differences g; north/west values are the shifted south/east ones and
    missing neighbours at the border count as conduction 1. The edge weight is
    ``G = 1 - mean of the 4 conductions`` and

        GCMSE = sum((G * (ref - test))^2) * N / sum(G),   N = number of values.

    This is the scale of the reference PyGCMSE code for 8-bit images (the value
    grows with image size). Lower is better; identical images give 0. With
    ``return_weight`` also returns ``sum(G) / N``, the share of the image used.
    """
    if option not in (1, 2):
        raise InputError(f"gcmse: option must be 1 or 2, got {option!r}")
    if not (isinstance(kappa, numbers.Real) and math.isfinite(kappa) and kappa > 0):
        raise InputError(f"gcmse: kappa must be a positive number, got {kappa!r}")
    a, b, rng = _pair("gcmse", ref, test, data_range)
    a /= rng
    b /= rng
    grad_s = np.zeros_like(a)
    grad_e = np.zeros_like(a)
    grad_s[:-1] = a[1:] - a[:-1]
    grad_e[:, :-1] = a[:, 1:] - a[:, :-1]
    if option == 1:
        cond_s = np.exp(-((grad_s / kappa) ** 2))
        cond_e = np.exp(-((grad_e / kappa) ** 2))
    else:
        cond_s = 1.0 / (1.0 + (grad_s / kappa) ** 2)
        cond_e = 1.0 / (1.0 + (grad_e / kappa) ** 2)
    cond_n = np.ones_like(a)
    cond_w = np.ones_like(a)
    cond_n[1:] = cond_s[:-1]
    cond_w[:, 1:] = cond_e[:, :-1]
    conduction = np.clip((cond_n + cond_s + cond_w + cond_e) / 4.0, 0.0, 1.0)
    weight = 1.0 - conduction
    total = float(weight.sum())
    num = float(((weight * (a - b)) ** 2).sum())
    if total == 0.0:
        # Flat reference: no edge regions, so no error can be weighted.
        value = 0.0 if num == 0.0 else math.nan
    else:
        value = num * a.size / total
    if return_weight:
        return value, total / a.size
    return value


def rmse(truth: Sequence | np.ndarray, estimate: Sequence | np.ndarray) -> float:
    """Root mean square error over positions where neither value is NaN (NaN if none)."""
    t = np.asarray(truth, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    if t.shape != e.shape:
        raise InputError(f"rmse: inputs differ in shape, {t.shape} vs {e.shape}")
    valid = ~(np.isnan(t) | np.isnan(e))
    if not valid.any():
        return math.nan
    return float(np.sqrt(np.mean((t[valid] - e[valid]) ** 2)))


def affine_fit(reference, test) -> tuple[np.ndarray, float, float]:
    """``a * test + b`` with the least-squares ``a, b`` against ``reference`` (CSBDeep's
    ``normalize_minmse``): the best an affine rescaling can do; returns (fitted, a, b)."""
    ref = np.asarray(reference, dtype=np.float64)
    x = np.asarray(test, dtype=np.float64)
    xc = x - x.mean()
    var = float(np.mean(xc * xc))
    a = float(np.mean(xc * (ref - ref.mean())) / var) if var > 0 else 0.0
    b = float(ref.mean() - a * x.mean())
    return a * x + b, a, b


def evaluate_pair(clean, test, kind: str = "photo") -> dict[str, float]:
    """Benchmark metrics of ``test`` against ``clean`` (float images), by ``kind`` (``METRIC_KINDS``).

    ``photo``: psnr, ssim, epi_ratio and epi_correlation (clean as reference) and gcmse (PyGCMSE 8-bit
    scale) on uint8-quantised copies. ``scale-invariant``: psnr and ssim of the least-squares affine fit of
    ``test`` to ``clean`` (``affine_fit``), with data range ``max(clean) - min(clean)`` (CARE/CSBDeep).
    ``float``: psnr and ssim of the pair clipped to [0, 1], data range 1.
    """
    if kind == "scale-invariant":
        ref = np.asarray(clean, dtype=np.float64)
        fitted, _, _ = affine_fit(ref, test)
        rng = float(ref.max() - ref.min()) or 1.0
        return {"psnr": psnr(ref, fitted, data_range=rng), "ssim": ssim(ref, fitted, data_range=rng)}
    if kind == "float":
        c = np.clip(np.asarray(clean, dtype=np.float64), 0.0, 1.0)
        t = np.clip(np.asarray(test, dtype=np.float64), 0.0, 1.0)
        return {"psnr": psnr(c, t, data_range=1.0), "ssim": ssim(c, t, data_range=1.0)}
    if kind != "photo":
        raise InputError(f"unknown metric kind '{kind}' (choose from: {', '.join(METRIC_KINDS)})")
    c = quantize_uint8(clean)
    t = quantize_uint8(test)
    return {
        "psnr": psnr(c, t, data_range=255),
        "ssim": ssim(c, t, data_range=255),
        "epi_ratio": epi_ratio(c, t),
        "epi_correlation": epi_correlation(c, t),
        "gcmse": gcmse(c, t, data_range=255),
    }
