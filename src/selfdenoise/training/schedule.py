"""Learning-rate schedules as strings (``--schedule``), as a factor of the peak rate at a fraction of training."""
from __future__ import annotations

import math

from ..core.errors import InputError

SCHEDULES = "constant | cosine | step:EVERY:FACTOR | multistep:F1,F2,...:FACTOR | rampdown:FRACTION"


def lr_factor(schedule: str, frac: float) -> float:
    """Learning-rate multiplier at fraction ``frac`` (0..1) of training for a schedule string."""
    kind, _, arg = schedule.partition(":")
    try:
        if kind == "constant":
            return 1.0
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))
        if kind == "step":
            every, factor = (float(a) for a in arg.split(":"))
            return factor ** math.floor(frac / every + 1e-9)
        if kind == "multistep":
            marks, factor = arg.split(":")
            return float(factor) ** sum(frac >= float(m) for m in marks.split(","))
        if kind == "rampdown":
            p = float(arg)
            t = (frac - (1.0 - p)) / p
            return 1.0 if t <= 0 else (0.5 + math.cos(math.pi * min(1.0, t)) / 2.0) ** 2
    except (ValueError, ZeroDivisionError):
        pass
    raise InputError(f"bad schedule '{schedule}' (use {SCHEDULES})")
