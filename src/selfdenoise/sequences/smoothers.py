"""Classical smoothers for sequences (frames, points, coords): Savitzky-Golay, Gaussian, One Euro.

Every smoother first fills NaN gaps by linear interpolation over time (``tracks.fill_gaps``), then
filters each channel (point x coordinate) over time; the output has no NaN. ``tune`` picks a
smoother's parameters by grid search against a clean track (used on a synthetic track with its own
seed, never on a test track).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..core.errors import InputError
from .tracks import check_sequence, fill_gaps, find_outlier_frames


def prepared(seq, outlier_threshold: float | None = None) -> np.ndarray:
    """The checked sequence with gaps linearly interpolated; with ``outlier_threshold``, the frames
    that ``sequences.tracks.find_outlier_frames`` flags are first treated as gaps (the same rejection that
    Self2Self uses), so smoothers and the learned method can be compared on equal terms."""
    x = check_sequence(seq)
    if outlier_threshold:
        x = x.copy()
        x[find_outlier_frames(x, float(outlier_threshold))] = np.nan
    return fill_gaps(x)


def savgol(seq: np.ndarray, window: int = 9, polyorder: int = 2, outlier_threshold: float | None = None) -> np.ndarray:
    """Savitzky-Golay: a least-squares polynomial of ``polyorder`` over ``window`` frames (odd)."""
    from scipy.signal import savgol_filter

    x = prepared(seq, outlier_threshold)
    window = int(window) | 1  # odd
    window = min(window, x.shape[0] - (1 - x.shape[0] % 2))
    if polyorder >= window:
        raise InputError(f"savgol: polyorder {polyorder} must be below the window ({window} frames)")
    return savgol_filter(x, window, int(polyorder), axis=0, mode="interp")


def gaussian(seq: np.ndarray, sigma: float = 2.0, outlier_threshold: float | None = None) -> np.ndarray:
    """Gaussian smoothing over time, ``sigma`` in frames (edges: reflected)."""
    from scipy.ndimage import gaussian_filter1d

    if sigma <= 0:
        raise InputError(f"gaussian: sigma must be positive, got {sigma}")
    return gaussian_filter1d(prepared(seq, outlier_threshold), float(sigma), axis=0, mode="nearest")


def _alpha(cutoff, dt: float):
    """Smoothing factor of a first-order low-pass at ``cutoff`` Hz (Casiez et al. 2012, eq. 4-5)."""
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(seq: np.ndarray, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0,
             fps: float = 30.0, outlier_threshold: float | None = None) -> np.ndarray:
    """The One Euro filter (Casiez, Roussel & Vogel, CHI 2012), causal, vectorised over channels.

    For each frame i: dx_i = (x_i - x̂_{i-1}) * fps, filtered with a fixed cutoff ``d_cutoff`` Hz:
    dx̂_i = a(d_cutoff) dx_i + (1 - a) dx̂_{i-1}; then the adaptive cutoff
    f_c = ``min_cutoff`` + ``beta`` |dx̂_i| and x̂_i = a(f_c) x_i + (1 - a(f_c)) x̂_{i-1}, where
    a(f) = 1 / (1 + tau / T_e), tau = 1 / (2 pi f), T_e = 1 / fps. The first frame passes unchanged.
    """
    if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0 or fps <= 0:
        raise InputError("one-euro: min_cutoff, d_cutoff and fps must be positive and beta non-negative")
    x = prepared(seq, outlier_threshold)
    flat = x.reshape(x.shape[0], -1)
    out = np.empty_like(flat)
    dt = 1.0 / fps
    a_d = _alpha(d_cutoff, dt)
    prev = flat[0].copy()
    dprev = np.zeros_like(prev)
    out[0] = prev
    for i in range(1, flat.shape[0]):
        dx = (flat[i] - prev) / dt
        dprev = a_d * dx + (1 - a_d) * dprev
        a = _alpha(min_cutoff + beta * np.abs(dprev), dt)
        prev = a * flat[i] + (1 - a) * prev
        out[i] = prev
    return out.reshape(x.shape)


SMOOTHERS = {"savgol": savgol, "gaussian": gaussian, "one-euro": one_euro}

#: Parameter grids searched by ``tune`` (One Euro's cutoffs in Hz at 30 fps, beta in 1/(units)).
#: ``outlier_threshold`` is tuned too: None (plain smoother) or Self2Self's outlier-frame rejection.
GRIDS: dict[str, dict[str, list]] = {
    "savgol": {"window": [5, 7, 9, 11, 15, 19, 23, 27, 31, 35, 41, 47, 55, 65, 75, 85, 95],
               "polyorder": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "outlier_threshold": [None, 5.0]},
    "gaussian": {"sigma": [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0, 4.0, 5.0],
                 "outlier_threshold": [None, 5.0]},
    "one-euro": {"min_cutoff": [0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0],
                 "beta": [0.0, 3.0, 10.0, 30.0, 60.0, 100.0, 200.0, 400.0, 1000.0], "d_cutoff": [1.0, 3.0],
                 "outlier_threshold": [None, 5.0]},
}


def rmse(truth: np.ndarray, estimate: np.ndarray) -> float:
    diff = np.asarray(estimate, np.float64) - np.asarray(truth, np.float64)
    return float(np.sqrt(np.nanmean(diff**2)))


def tune(name: str, noisy: np.ndarray, clean: np.ndarray, grid: dict[str, list] | None = None,
         **fixed) -> tuple[dict, float]:
    """Grid search: the parameters of smoother ``name`` with the lowest RMSE against ``clean``.
    Returns ``(params, rmse)``. ``fixed`` options (e.g. ``fps``) are passed through unchanged."""
    if name not in SMOOTHERS:
        raise InputError(f"unknown smoother '{name}' (known: {', '.join(SMOOTHERS)})")
    grid = dict(grid or GRIDS[name])
    thresholds = grid.pop("outlier_threshold", [fixed.pop("outlier_threshold", None)])
    best: tuple[dict, float] = ({}, math.inf)
    keys = list(grid)
    for threshold in thresholds:
        x = prepared(noisy, threshold)  # once per threshold: the rejection does not depend on the rest
        for values in itertools.product(*(grid[k] for k in keys)):
            params = dict(zip(keys, values))
            if name == "savgol" and params["polyorder"] >= params["window"]:
                continue
            err = rmse(clean, SMOOTHERS[name](x, **params, **fixed))
            if err < best[1]:
                best = ({**params, "outlier_threshold": threshold}, err)
    return best
