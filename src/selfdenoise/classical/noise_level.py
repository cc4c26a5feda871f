"""Noise-level estimation: the patch-PCA estimator (default) and the wavelet MAD estimator."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: noise std on stride-3 sub-images / on the image, above which noise counts as spatially correlated.
#: Selected on the validation splits (``benchmarks/selection/white-ratio.json``, made by
#: ``benchmarks/select_white_ratio.py``): 1.03-1.34 for Gaussian sigma 25 and Poisson lambda 30 (McMaster,
#: Set12), 2.19-9.50 on the PolyU and Nam validation photos; the threshold is the geometric mean of the gap.
#: (At low noise texture inflates the ratio: 1.6-2.9 on Kodak with sigma 5.)
WHITE_RATIO = 1.71
#: images under this many pixels a side are too small to tell white from correlated noise (counted white)
MIN_SIDE_FOR_WHITENESS = 24


def whiteness_ratio(image: np.ndarray) -> float:
    """Noise std estimated on stride-3 pixel-shuffle sub-images over that on the whole image (H, W[, C]):
    about 1 for white noise, well above for spatially correlated noise, whose high frequencies (which the
    patch-PCA estimate sees at stride 1) were removed by demosaicing and compression."""
    if min(np.shape(image)[:2]) < MIN_SIDE_FOR_WHITENESS:
        return 1.0
    return estimate_sigma(image, stride=3) / max(estimate_sigma(image, stride=1), 1e-3)


def auto_sigma(image: np.ndarray) -> tuple[float, bool]:
    """``(sigma, correlated)``: the patch-PCA level of ``estimate_sigma(stride="auto")`` and whether the
    noise counts as spatially correlated (``whiteness_ratio`` >= ``WHITE_RATIO``), each estimate made once."""
    if min(np.shape(image)[:2]) < MIN_SIDE_FOR_WHITENESS:
        return estimate_sigma(image, stride=1), False
    on_subs, on_image = estimate_sigma(image, stride=3), estimate_sigma(image, stride=1)
    correlated = on_subs / max(on_image, 1e-3) >= WHITE_RATIO
    return (on_subs if correlated else on_image), correlated


def estimate_sigma(image: np.ndarray, method: str = "pca", stride: int | str = 1) -> float:
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
    ``stride="auto"``: 3 when the noise is spatially correlated (``whiteness_ratio`` >= ``WHITE_RATIO``),
    else 1 -- what the classical baselines use when no sigma is given, so that ``bm3d`` on a real photo
    is not a no-op (PolyU ISO-6400 circuit pair: NLM 32.07 dB with the stride-1 estimate, 32.88 with stride 3,
    noisy 31.99).
    """
    if stride == "auto":
        sigma, correlated = auto_sigma(image)
        return sigma if method == "pca" else estimate_sigma(image, method, 3 if correlated else 1)
    img = np.asarray(image)  # windows are converted to float64 once sampled: no full-size float64 copy
    if not np.issubdtype(img.dtype, np.floating):
        img = img.astype(np.float64)
    if stride > 1:
        subs = [img[i::stride, j::stride] for i in range(stride) for j in range(stride)]
        return float(np.mean([estimate_sigma(s, method) for s in subs[:: max(1, len(subs) // 4)]]))
    if img.ndim == 2:
        img = img[..., None]
    if method == "wavelet":
        from skimage.restoration import estimate_sigma as sk_estimate  # imports scipy.stats (1 s): only here

        return float(sk_estimate(img, channel_axis=-1, average_sigmas=True)) * 255.0
    if method != "pca":
        raise ValueError(f"unknown sigma estimator '{method}' (pca, wavelet)")
    return float(np.mean([_pca_sigma(img[..., c]) for c in range(img.shape[-1])])) * 255.0


def _patch_rows(channel: np.ndarray, patch: int, max_patches: int) -> np.ndarray:
    """The ``patch`` x ``patch`` windows of ``channel`` as rows; above ``max_patches`` a deterministic, even
    subsample, gathered from the strided view so that only the chosen windows are ever copied (a 12-MP
    channel has 12 M windows: 4.7 GB as float64 rows)."""
    view = sliding_window_view(channel, (patch, patch))
    n = view.shape[0] * view.shape[1]
    if n <= max_patches:
        return view.reshape(-1, patch * patch)
    index = np.linspace(0, n - 1, max_patches).astype(np.int64)
    return view[index // view.shape[1], index % view.shape[1]].reshape(-1, patch * patch)


def _pca_sigma(channel: np.ndarray, patch: int = 7, max_patches: int = 60000) -> float:
    if min(channel.shape) < patch:
        patch = max(2, min(channel.shape))
    windows = _patch_rows(channel, patch, max_patches).astype(np.float64)
    x = windows - windows.mean(axis=0)
    eig = np.sort(np.linalg.eigvalsh(x.T @ x / len(x)))  # ascending
    eig = np.clip(eig, 0.0, None)
    # Largest m such that mean(eig[:m]) and median(eig[:m]) agree: those m are noise-only directions.
    for m in range(len(eig), 0, -1):
        tail = eig[:m]
        if tail.mean() <= np.median(tail) + 1e-12 or m == 1:
            return float(np.sqrt(tail.mean()))
    return float(np.sqrt(eig[0]))


#: noise variance at the bright end (95th percentile of the signal) over that at the dark end (5th) above
#: which the noise counts as signal dependent (Poisson-Gaussian) and the baselines run through the VST, and
#: how the noise variance of a signal bin is measured from its Haar details: "moment" (their variance) or "mad"
#: (the squared median absolute deviation, robust to texture left in flat cells but blind to photon-limited
#: noise: where most pixels of a dark bin sit on the camera offset and the noise is the rare photon, as on the
#: FMD confocal fish frames, it gives 0.5 counts^2 where the details' variance is 7-50). Both selected on
#: validation splits (``benchmarks/selection/baseline-noise.json``; the fitted ratio is 11-24 on W2S
#: fluorescence frames, 1.01-1.09 on McMaster with Gaussian noise and 1.0-1.8 on the dark, read-noise dominated
#: nuclei slices): mean of NLM and BM3D over the four sets with thresholds 1.1 / 1.25 / 1.5 / 2 / 3, moment
#: 34.190 / 34.201 / 34.208 / 34.211 / 34.211 dB, MAD 34.119 / 34.130 / 34.140 / 34.144 / 34.144 (one level
#: always: 32.401); the moment gains 0.43 dB on W2S for BM3D and ties elsewhere. Those noisy images are never
#: clipped; an 8-bit photo with Gaussian noise is, and the clipping shrinks the variance at both ends: without
#: the clipped model (``CLIPPING``) the fit read 1.0-3.55 into McMaster validation images with sigma 5-50
#: clipped and rounded to 8 bits, with it 1.0-1.26, against 4.9-34 on the W2S validation frames and 1.4-102 on
#: McMaster with Poisson noise. The threshold that misroutes the fewest of those validation images, with the
#: widest margin (``benchmarks/select_signal_dependence.py``, ``benchmarks/selection/signal-dependence.json``):
#: 1.5 (24 misrouted: 23 read-noise dominated nuclei slices, whose fit is 1.0-1.85 and where both routes tie,
#: and 1 Poisson image; 2 and 5 misroute 31 and 33).
SIGNAL_DEPENDENCE = 1.5
BIN_SPREAD = "moment"
SPREADS = ("moment", "mad")
#: whether the fit models clipping (``clip_levels``, ``_fit_clipped``), and the share of pixels at the image's
#: minimum or maximum from which it counts as clipped there
CLIPPING = True
CLIP_MASS = 0.001


def clip_levels(image: np.ndarray, mass: float = CLIP_MASS) -> tuple[float, float]:
    """``(low, high)``: the image's minimum and maximum where at least ``mass`` of its pixels sit exactly there
    (the image was clipped there, as an 8-bit file is at 0 and 255), else -inf / inf."""
    img = np.asarray(image)
    low, high = float(img.min()), float(img.max())
    return (low if np.mean(img == low) >= mass else -np.inf, high if np.mean(img == high) >= mass else np.inf)


def clipped_moments(mean: np.ndarray, std: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``clip(y, low, high)`` for ``y ~ N(mean, std^2)`` (Foi et al. 2008, eqs. 8-9)."""
    from scipy.special import ndtr

    std = np.maximum(std, 1e-12)
    low, high = np.maximum(low, mean - 40 * std), np.minimum(high, mean + 40 * std)  # no limit: none met
    alpha, beta = (low - mean) / std, (high - mean) / std
    cdf_a, cdf_b = ndtr(alpha), ndtr(beta)
    pdf_a, pdf_b = np.exp(-0.5 * alpha ** 2) / np.sqrt(2 * np.pi), np.exp(-0.5 * beta ** 2) / np.sqrt(2 * np.pi)
    inside = cdf_b - cdf_a
    first = low * cdf_a + high * (1 - cdf_b) + mean * inside + std * (pdf_a - pdf_b)
    second = (low ** 2 * cdf_a + high ** 2 * (1 - cdf_b) + (mean ** 2 + std ** 2) * inside
              + 2 * mean * std * (pdf_a - pdf_b) + std ** 2 * (alpha * pdf_a - beta * pdf_b))
    return first, np.maximum(second - first ** 2, 0.0)


def _clipped_variance(levels: np.ndarray, gain: float, var0: float, limits: tuple[float, float],
                      span: float) -> np.ndarray:
    """The variance of the clipped observations at the clipped means ``levels`` under ``Var[y] = gain * y +
    var0``: the unclipped mean of each level found by bisection (the clipped mean grows with it)."""
    floor = 1e-6 * span ** 2
    lo, hi = levels - span, levels + span
    for _ in range(48):
        mid = (lo + hi) / 2
        first, _ = clipped_moments(mid, np.sqrt(np.maximum(gain * mid + var0, floor)), *limits)
        below = first < levels
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    mid = (lo + hi) / 2
    return clipped_moments(mid, np.sqrt(np.maximum(gain * mid + var0, floor)), *limits)[1]


def _fit_clipped(m: np.ndarray, v: np.ndarray, weight: np.ndarray, limits: tuple[float, float], gain: float,
                 var0: float) -> tuple[float, float, float]:
    """``(gain, var0, misfit)`` of ``Var[y] = gain * y + var0`` before clipping to ``limits``, fitted by weighted least
    squares to the bins' clipped means ``m`` and variances ``v`` (Foi et al. 2008, section IV): a clipped
    Gaussian's variance shrinks near the clip levels without any gain, photon-limited noise's all along."""
    from scipy.optimize import least_squares

    span = float(np.ptp(m)) + 8 * float(np.sqrt(v.max()))

    def residuals(p):
        return np.sqrt(weight) * (_clipped_variance(m, p[0] * v.max() / span, p[1] * v.max(), limits, span) - v)

    start = [max(gain, 0.0) * span / v.max(), var0 / v.max()]
    fit = least_squares(residuals, start, bounds=([0.0, -np.inf], [np.inf, np.inf]))
    return float(fit.x[0] * v.max() / span), float(fit.x[1] * v.max()), float(2 * fit.cost)


def _bin_variance(details: np.ndarray, spread: str) -> float:
    """The noise variance of one signal bin's Haar details: their variance or their squared MAD."""
    if spread == "moment":
        return float(details.var())
    return float((1.4826 * np.median(np.abs(details - np.median(details)))) ** 2)


def estimate_poisson_gaussian(image: np.ndarray, bins: int = 12, spread: str = BIN_SPREAD,
                              clipping: bool = CLIPPING) -> tuple[float, float, float]:
    """``(gain, var0, dependence)`` of the noise model ``Var[z | y] = gain * y + var0`` (image units, [0, 1])
    fitted on one image with white noise, in the spirit of Foi et al. (IEEE TIP 2008, "Practical
    Poissonian-Gaussian noise modeling and fitting for single-image raw-data"): on the 2x2 Haar transform,
    the diagonal detail ``(a - b - c + d) / 2`` of each cell carries the noise variance of its pixels and the
    mean carries the signal; cells where the smoothed signal curves (edges, texture) are dropped, the rest
    are binned by signal level, each bin's variance is measured from its details (``spread``: their
    variance, or the squared MAD; ``BIN_SPREAD``), and a weighted least
    squares line through the bins gives ``gain`` (>= 0) and ``var0``. Where the image is clipped
    (``clipping`` and ``clip_levels``), the bins are fitted with the clipped model instead (``_fit_clipped``).
    ``dependence``: the fitted variance at the 95th percentile of the signal over that at the 5th (about 1
    for Gaussian noise)."""
    from scipy.ndimage import laplace, uniform_filter  # scipy.ndimage costs 0.3 s at import: only here

    if spread not in SPREADS:
        raise ValueError(f"spread is one of {SPREADS}, not {spread!r}")
    img = np.asarray(image)
    img = img[..., None] if img.ndim == 2 else img
    if min(img.shape[:2]) < MIN_SIDE_FOR_WHITENESS:  # too few cells to fit a line: one white level
        return 0.0, (estimate_sigma(img) / 255.0) ** 2, 1.0
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    levels, details = [], []
    for c in range(img.shape[-1]):
        x = img[:h, :w, c].astype(np.float32)
        a, b, cc, d = x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2]
        detail, level = (a - b - cc + d) / 2, uniform_filter((a + b + cc + d) / 4, 3)
        curvature = np.abs(laplace(uniform_filter(level, 3)))
        keep = curvature <= np.quantile(curvature, 0.5)
        levels.append(level[keep].astype(np.float64))
        details.append(detail[keep].astype(np.float64))
    level, detail = np.concatenate(levels), np.concatenate(details)
    lo, hi = np.quantile(level, [0.02, 0.98])
    inside = (level >= lo) & (level <= hi)
    level, detail = level[inside], detail[inside]
    edges = np.quantile(level, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, level, side="right") - 1, 0, bins - 1)
    selected = [which == k for k in range(bins)]
    selected = [sel for sel in selected if sel.sum() >= 50]
    m = np.array([level[sel].mean() for sel in selected])
    v = np.array([_bin_variance(detail[sel], spread) for sel in selected])
    n = np.array([sel.sum() for sel in selected], dtype=np.float64)
    if len(m) < 2 or np.ptp(m) <= 0:
        var0 = float(v.mean()) if len(v) else 0.0
        return 0.0, var0, 1.0
    weight = n / np.maximum(v, 1e-12) ** 2  # the variance of a variance estimate grows with its square
    design = np.stack([m, np.ones_like(m)], axis=1) * np.sqrt(weight)[:, None]
    gain, var0 = np.linalg.lstsq(design, v * np.sqrt(weight), rcond=None)[0]
    if gain < 0:
        gain, var0 = 0.0, float(np.average(v, weights=n))
    limits = clip_levels(img) if clipping else (-np.inf, np.inf)
    if np.isfinite(limits).any():
        linear_misfit = float(np.sum(weight * (gain * m + var0 - v) ** 2))
        clipped_gain, clipped_var0, clipped_misfit = _fit_clipped(m, v, weight, limits, gain, var0)
        if clipped_misfit < linear_misfit:
            gain, var0 = clipped_gain, clipped_var0
    p5, p95 = np.quantile(level, [0.05, 0.95])
    dark, bright = gain * p5 + var0, gain * p95 + var0
    return float(gain), float(var0), float(bright / dark) if dark > 0 else float("inf")


def poisson_gaussian_model(image: np.ndarray, dependence_threshold: float = SIGNAL_DEPENDENCE,
                           spread: str = BIN_SPREAD) -> tuple[float, float, float] | None:
    """``(gain, sigma, mu)`` of ``vst.generalized_anscombe`` for the white, signal-dependent noise of
    ``image`` (fitted by ``estimate_poisson_gaussian``: a negative ``var0`` becomes the offset ``mu``), or
    None when the noise is not signal dependent (fitted ``dependence`` under ``dependence_threshold``)."""
    gain, var0, dependence = estimate_poisson_gaussian(image, spread=spread)
    if gain > 0 and dependence >= dependence_threshold:
        return gain, float(np.sqrt(max(var0, 0.0))), max(-var0, 0.0) / gain
    return None


def estimated_noise(image: np.ndarray, measured: tuple[float, bool] | None = None,
                    dependence_threshold: float = SIGNAL_DEPENDENCE,
                    spread: str = BIN_SPREAD) -> tuple[float, bool, tuple[float, float, float] | None]:
    """The noise an image has, as the estimating routes read it: ``(sigma, correlated, model)``, ``auto_sigma``'s
    level and verdict (``measured``: that pair when already made) and, for white noise the fit finds signal
    dependent, the Poisson-Gaussian ``model`` of ``poisson_gaussian_model`` (else None)."""
    sigma, correlated = measured if measured is not None else auto_sigma(image)
    model = None if correlated else poisson_gaussian_model(image, dependence_threshold, spread)
    return sigma, correlated, model
