"""N2V2 (Hoeck, Buchholz, ..., Jug, ECCV 2022 workshops): ``--method n2v2``.

Noise2Void (``methods.n2v``) leaves checkerboard artefacts: a manipulated pixel takes the value of one
neighbour, so the network learns that a pixel equal to a neighbour is suspicious, and the top skip
connection lets high frequencies of the input through. N2V2 fixes both: a manipulated pixel becomes the
median of its neighbourhood without the centre (``manipulation="median"``), and its network
(``nets.unet_n2v`` with ``n2v2``) down-samples with max-blur pooling and has no skip connection at full
resolution. Everything else (stratified 0.2 % masking, loss on the manipulated pixels, recipes, fitting one
image) is Noise2Void's. This is CAREamics' default for microscopy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .contract import option
from .n2v import Noise2Void


@dataclass(kw_only=True)
class N2V2(Noise2Void):
    """Noise2Void with median manipulation and the N2V2 network (see the module docstring)."""

    name: ClassVar[str] = "n2v2"
    presets: ClassVar[dict] = {k: {**v, "net": "n2v2"} for k, v in Noise2Void.presets.items()}

    net: str = option("n2v2")
    manipulation: str = option("median")
