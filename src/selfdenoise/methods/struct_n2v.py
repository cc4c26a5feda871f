"""structN2V (Broaddus, Krull, Weigert, Schmidt and Myers, ISBI 2020): ``--method struct-n2v``.

Noise2Void (``methods.n2v``) assumes the noise of a pixel is independent of its neighbours'. Scanning
microscopes and many cameras break that along one direction: the noise is correlated along a row (or a
column), so a blind spot of one pixel still sees its noise in the pixels beside it, and the network learns
to reproduce the streaks. structN2V widens the blind spot into a line: the ``span // 2`` pixels on each
side of every manipulated pixel along ``struct_axis`` ("horizontal" by default, or "vertical") are also
hidden, replaced by values drawn uniformly between the crop's minimum and maximum, and are never used as
its replacement. The loss, the network and the recipes are Noise2Void's. Choose the axis along which
the noise streaks (the autocorrelation of a flat region shows it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..core.errors import InputError
from .contract import option
from .n2v import Noise2Void


@dataclass(kw_only=True)
class StructN2V(Noise2Void):
    """Noise2Void with a line-shaped blind spot (see the module docstring)."""

    name: ClassVar[str] = "struct-n2v"

    struct_axis: str = option("horizontal")

    def __post_init__(self):
        super().__post_init__()
        if self.struct_axis == "none":
            raise InputError("struct-n2v: struct_axis must be horizontal or vertical (none is plain n2v)")
