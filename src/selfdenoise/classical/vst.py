"""Variance-stabilising transforms (VST) for Poisson and Poisson-Gaussian noise, so that white-Gaussian
denoisers (BM3D, NLM) are run on such data as the field does (Makitalo & Foi):

1. the generalized Anscombe transform (GAT) turns the signal-dependent noise into approximately
   N(0, 1) noise;
2. a Gaussian denoiser is run with that known noise level;
3. the closed-form approximation of the *exact unbiased inverse* maps the denoised result back. The
   algebraic inverse ``(D/2)^2 - 3/8`` is biased at low counts because E[f(z)] != f(E[z]) for a
   non-linear f; the exact unbiased inverse is instead the inverse of y -> E[f(z) | y].

Observation model (as in Makitalo & Foi 2013), all quantities in the same units as ``z``::

    z = gain * p + n,    p ~ Poisson(y / gain),    n ~ N(mu, sigma^2)

so that E[z | y] = y + mu and Var[z | y] = gain * y + sigma^2. With ``gain = 1, sigma = 0, mu = 0``
this is pure Poisson data in photon counts. The package's ``poisson:L`` noise on images in [0, 1]
(``Poisson(L x) / L``) is ``gain = 1 / L``, ``sigma = 0``, ``mu = 0``, ``y = x``.

References:
    M. Makitalo and A. Foi, "Optimal inversion of the Anscombe transformation in low-count Poisson
    image denoising", IEEE Trans. Image Process. 20(1):99-109, 2011, doi:10.1109/TIP.2010.2056693 (the
    closed-form approximation of the exact unbiased inverse).
    M. Makitalo and A. Foi, "Optimal inversion of the generalized Anscombe transformation for
    Poisson-Gaussian noise", IEEE Trans. Image Process. 22(1):91-103, 2013, doi:10.1109/TIP.2012.2202675
    (the GAT and its inverse for Poisson-Gaussian data).
    J.-L. Starck, F. Murtagh and A. Bijaoui, "Image Processing and Data Analysis", Cambridge University
    Press, 1998 (the generalized Anscombe transform).
    F. J. Anscombe, "The transformation of Poisson, binomial and negative-binomial data", Biometrika
    35(3/4):246-254, 1948.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..core.errors import InputError

__all__ = ["algebraic_inverse", "exact_unbiased_inverse", "generalized_anscombe", "vst_denoise"]

_SQRT_3_2 = float(np.sqrt(1.5))
#: E[f(z) | y = 0] for pure Poisson data, 2 sqrt(3/8): the closed form below is exactly 0 there and is
#: not monotone below it (it grows like D^-3 as D -> 0), so smaller D map to 0, the paper's lower limit.
D_MIN = 2.0 * float(np.sqrt(3.0 / 8.0))


def _check(gain: float, sigma: float) -> tuple[float, float]:
    gain, sigma = float(gain), float(sigma)
    if not gain > 0 or not np.isfinite(gain):
        raise InputError(f"VST: gain must be a positive number, got {gain}")
    if not sigma >= 0 or not np.isfinite(sigma):
        raise InputError(f"VST: Gaussian sigma must be a non-negative number, got {sigma}")
    return gain, sigma


def generalized_anscombe(z, gain: float = 1.0, sigma: float = 0.0, mu: float = 0.0) -> np.ndarray:
    """Forward generalized Anscombe transform (Starck, Murtagh & Bijaoui 1998; Makitalo & Foi 2013)::

        f(z) = (2 / gain) * sqrt(max(gain * z + 3/8 * gain^2 + sigma^2 - gain * mu, 0))

    for observations ``z = gain * p + n`` with ``p ~ Poisson(y / gain)`` and ``n ~ N(mu, sigma^2)``.
    After ``f`` the noise is approximately N(0, 1) (unit variance, good from about 5 photons
    ``y / gain`` upwards or when ``sigma / gain`` is large). Equivalently f(z) = 2 sqrt(z' + 3/8 + s^2)
    with z' = (z - mu) / gain and s = sigma / gain; ``gain=1, sigma=0, mu=0`` is the classic
    Anscombe transform ``2 sqrt(z + 3/8)``. Float64 array of ``z``'s shape."""
    gain, sigma = _check(gain, sigma)
    z = np.asarray(z, dtype=np.float64)
    arg = gain * z + 0.375 * gain**2 + sigma**2 - gain * float(mu)
    return (2.0 / gain) * np.sqrt(np.maximum(arg, 0.0))


def exact_unbiased_inverse(D, gain: float = 1.0, sigma: float = 0.0, mu: float = 0.0) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse of :func:`generalized_anscombe`.

    ``D`` estimates E[f(z) | y] (a denoised transformed image); the result estimates E[z | y] = y + mu.
    With s = sigma / gain (Makitalo & Foi 2011 for I_C, 2013 for sigma, gain, mu)::

        I_C(D) = D^2/4 + sqrt(3/2)/4 * D^-1 - 11/8 * D^-2 + 5/8 * sqrt(3/2) * D^-3 - 1/8
        y_hat  = gain * max(I_C(D) - s^2, 0) + mu       for D >= 2 sqrt(3/8)
        y_hat  = mu                                      for D <  2 sqrt(3/8)

    ``2 sqrt(3/8) = E[f(z) | y = 0]`` for Poisson data: ``I_C`` is exactly 0 there and increasing above;
    below it the expansion turns back up (like D^-3) and the exact inverse is 0, as in the paper, where
    D values under the range of E[f(z) | y] map to y = 0. For large D, I_C(D) -> D^2/4 - 1/8 (the
    asymptotically unbiased inverse). Vectorised; float64 result of ``D``'s shape."""
    gain, sigma = _check(gain, sigma)
    d = np.asarray(D, dtype=np.float64)
    safe = np.maximum(d, D_MIN)  # avoids dividing by ~0; those entries are set to 0 below
    inv = 1.0 / safe
    ic = (0.25 * safe**2 + 0.25 * _SQRT_3_2 * inv - 1.375 * inv**2 + 0.625 * _SQRT_3_2 * inv**3 - 0.125)
    y = np.where(d >= D_MIN, np.maximum(ic - (sigma / gain) ** 2, 0.0), 0.0)
    return gain * y + float(mu)


def algebraic_inverse(D, gain: float = 1.0, sigma: float = 0.0, mu: float = 0.0) -> np.ndarray:
    """The algebraic inverse of :func:`generalized_anscombe`, ``gain * ((D/2)^2 - 3/8 - s^2) + mu`` with
    s = sigma / gain: exact for f's argument, but biased for E[z | y] at low counts. For comparison."""
    gain, sigma = _check(gain, sigma)
    d = np.asarray(D, dtype=np.float64)
    return gain * ((d / 2.0) ** 2 - 0.375 - (sigma / gain) ** 2) + float(mu)


def vst_denoise(denoiser: Callable[[np.ndarray, float], np.ndarray], image, *, photons: float | None = None,
                gain: float | None = None, sigma: float = 0.0, mu: float = 0.0) -> np.ndarray:
    """Run a white-Gaussian ``denoiser(image01, sigma_255)`` (e.g. ``baselines.nlm``, ``baselines.bm3d``)
    on Poisson or Poisson-Gaussian data through the generalized Anscombe transform.

    ``image``: float array in [0, 1] units (any shape the denoiser takes, e.g. (H, W) or (H, W, C)).
    Noise: either ``photons=L`` for the ``poisson:L`` convention ``Poisson(L x) / L`` (gain 1 / L), or
    ``gain`` (the Poisson scale in image units); plus an optional Gaussian ``sigma`` in image units
    (not 0-255) and offset ``mu`` (the model of ``generalized_anscombe``). Steps (as in Makitalo & Foi's VST + BM3D experiments): ``f = generalized_anscombe``
    (noise std 1), min-max scaling of ``f`` to [0, 1] so its noise std becomes ``1 / (max f - min f)``,
    ``denoiser(scaled, 255 / (max f - min f))``, the inverse scaling, then
    :func:`exact_unbiased_inverse`. Returns float32 of ``image``'s shape."""
    if (photons is None) == (gain is None):
        raise InputError("vst_denoise: give exactly one of photons (poisson:L) or gain")
    if photons is not None and not float(photons) > 0:
        raise InputError(f"vst_denoise: photons must be positive, got {photons}")
    g = 1.0 / float(photons) if photons is not None else float(gain)
    g, s = _check(g, sigma)
    z = np.asarray(image, dtype=np.float64)
    f = generalized_anscombe(z, g, s, mu)
    lo, hi = float(f.min()), float(f.max())
    span = hi - lo if hi > lo else 1.0
    scaled = (f - lo) / span
    den = np.asarray(denoiser(scaled.astype(np.float32), 255.0 / span), dtype=np.float64)
    if den.shape != z.shape:
        raise InputError(f"vst_denoise: the denoiser returned shape {den.shape} for input {z.shape}")
    return exact_unbiased_inverse(den * span + lo, g, s, mu).astype(np.float32)
