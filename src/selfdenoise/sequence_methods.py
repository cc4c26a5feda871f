"""Denoising methods for sequences (frames, points, coords), by name.

``self2self`` (default): ``methods.self2self_1d.Self2Self1D``, fitted to the track itself.
``savgol``, ``gaussian``, ``one-euro``: the classical smoothers of ``smoothers``.
All of them fill NaN gaps; the output has no NaN.
"""
from __future__ import annotations

import dataclasses
import inspect
import time

import numpy as np

from . import smoothers
from .errors import InputError
from .methods.self2self_1d import Self2Self1D
from .sequences import check_sequence, gap_summary

SEQUENCE_METHODS = ("self2self", "savgol", "gaussian", "one-euro")


def check_method(method: str) -> str:
    if method not in SEQUENCE_METHODS:
        raise InputError(f"unknown sequence method '{method}' (known: {', '.join(SEQUENCE_METHODS)})")
    return method


def method_options(method: str) -> dict:
    """The keyword options a sequence method takes, with their defaults."""
    if check_method(method) == "self2self":
        return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(Self2Self1D)}
    params = inspect.signature(smoothers.SMOOTHERS[method]).parameters
    return {p: v.default for p, v in params.items() if p != "seq"}


def run(seq, method: str = "self2self", *, seed: int = 0, progress: bool = False, **options) -> tuple[np.ndarray, dict]:
    """Denoise one sequence; returns ``(denoised float64 array, info)``. ``info`` holds the method,
    its options, ``seconds``, the input's gap counts and, for self2self, its fitting details."""
    arr = check_sequence(seq)
    known = method_options(method)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"method '{method}' has no option {', '.join(unknown)} (its options: {', '.join(known)})")
    t0 = time.perf_counter()
    info = {"method": method, "options": dict(options), "gaps": gap_summary(arr)}
    if method == "self2self":
        try:
            model = Self2Self1D(**options)
        except TypeError as e:
            raise InputError(f"self2self: {e}") from None
        out, fit = model.fit_denoise(arr, seed=seed, progress=progress)
        info["self2self"] = fit
    else:
        try:
            out = smoothers.SMOOTHERS[method](arr, **options)
        except TypeError as e:
            raise InputError(f"{method}: {e}") from None
    info["seconds"] = time.perf_counter() - t0
    return out, info


