"""Noise2Void (Krull, Buchholz and Jug, CVPR 2019): ``--method n2v``.

A blind-spot network learns from single noisy images. In every training crop a few pixels (``percent``
of them, 0.2 %: one drawn at random in each cell of a grid whose cells hold 500 pixels, so they are spread
evenly) are *manipulated*: each is replaced by the value of a random other pixel of its
``roi`` x ``roi`` neighbourhood. The network sees the manipulated crop and is scored (mean squared
error) on the manipulated pixels only, against their original noisy values. It cannot copy a pixel it
does not see, and the noise of that pixel is independent of its neighbours', so the best it can do is
predict the signal from the surroundings. Each channel is masked on its own. Inference is one pass of the
network on the whole image (tiled when large).

The network is Noise2Void's UNet (``nets.unet_n2v``: two down-samplings, 32/64/128 batch-normalised
features). N2V2 (``methods.n2v2``) and structN2V (``methods.struct_n2v``) change the manipulation and the
network; this file holds the manipulation of all three (``blind_spot_batch``).

Recipes: ``paper`` is N2V's own (64x64 crops, batch 128, Adam 4e-4); the CPU default (``fast``) takes
smaller batches and more steps. Trained on a folder (``selfdenoise train -m n2v``) or, like CAREamics on
one image, on the image it denoises (``selfdenoise denoise img.tif -m n2v``: ``steps`` or ``budget``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..core.errors import InputError
from .base import NamedNetMethod
from .contract import Batch, option
from .fitting import FitsOneImage

MANIPULATIONS = ("uniform", "median")
STRUCT_AXES = ("none", "horizontal", "vertical")


def masked_positions(planes: int, h: int, w: int, percent: float, generator: torch.Generator | None = None) -> Tensor:
    """(N, 3) int64 rows (plane, y, x): one pixel drawn uniformly in every cell of a grid over each plane
    whose cells hold ``100 / percent`` pixels (stratified sampling: about ``percent`` % of the pixels,
    spread evenly); cells cut by the border keep their pixel only when it falls inside."""
    cell = math.sqrt(100.0 / percent)
    ys = torch.arange(math.ceil(h / cell), dtype=torch.float64) * cell
    xs = torch.arange(math.ceil(w / cell), dtype=torch.float64) * cell
    p, y, x = torch.meshgrid(torch.arange(planes, dtype=torch.float64), ys, xs, indexing="ij")
    corners = torch.stack([y.reshape(-1), x.reshape(-1)], 1)
    yx = (corners + torch.rand(corners.shape, generator=generator, dtype=torch.float64) * cell).floor().long()
    inside = (yx[:, 0] < h) & (yx[:, 1] < w)
    return torch.cat([p.reshape(-1, 1).long(), yx], 1)[inside]


def neighbourhood(roi: int, exclude: Tensor | None = None) -> Tensor:
    """(K, 2) offsets (dy, dx) of a ``roi`` x ``roi`` window, without its centre and without the offsets
    in ``exclude`` (the structN2V pattern)."""
    r = roi // 2
    dy, dx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    offsets = torch.stack([dy.reshape(-1), dx.reshape(-1)], 1)
    keep = (offsets != 0).any(1)
    if exclude is not None and len(exclude):
        keep &= ~(offsets[:, None, :] == exclude[None]).all(-1).any(1)
    return offsets[keep]


def struct_offsets(axis: str, span: int) -> Tensor:
    """(K, 2) offsets of structN2V's mask: the ``span // 2`` pixels on each side of the centre along
    ``axis`` (the direction in which the noise is correlated)."""
    if axis == "none":
        return torch.zeros(0, 2, dtype=torch.long)
    d = torch.tensor([k for k in range(-(span // 2), span // 2 + 1) if k != 0])
    zero = torch.zeros_like(d)
    return torch.stack([zero, d] if axis == "horizontal" else [d, zero], 1)


def blind_spot_batch(x: Tensor, percent: float = 0.2, roi: int = 11, manipulation: str = "uniform",
                     struct: Tensor | None = None, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Noise2Void's manipulation of a batch ``x`` (B, C, H, W): returns (manipulated copy, boolean mask of
    the manipulated pixels). Each channel of each crop is a plane of its own.

    ``uniform`` (N2V): a manipulated pixel takes the value of a random other pixel of its neighbourhood;
    ``median`` (N2V2): the median of its neighbourhood without the centre (no value is copied from one
    pixel, which is what leaves N2V's checkerboard). ``struct`` (structN2V): offsets around each
    manipulated pixel that are also hidden, by values drawn uniformly between the plane's minimum and
    maximum, and left out of its neighbourhood. A neighbour outside the crop is taken mirrored (``_shifted``)."""
    b, c, h, w = x.shape
    planes = x.detach().reshape(b * c, h, w)
    pos = masked_positions(b * c, h, w, percent, generator)
    offsets = neighbourhood(roi, struct)
    p, y, xx = pos.unbind(1)
    if manipulation == "uniform":
        pick = offsets[torch.randint(0, len(offsets), (len(pos),), generator=generator)]
        values = planes[p, _shifted(y, pick[:, 0], h), _shifted(xx, pick[:, 1], w)]
    elif manipulation == "median":
        ny, nx = _shifted(y[:, None], offsets[None, :, 0], h), _shifted(xx[:, None], offsets[None, :, 1], w)
        values = planes[p[:, None], ny, nx].median(dim=1).values
    else:
        raise InputError(f"unknown manipulation '{manipulation}' (known: {', '.join(MANIPULATIONS)})")
    out = planes.clone()
    if struct is not None and len(struct):
        lo, hi = planes.amin((1, 2)), planes.amax((1, 2))
        sp = p[:, None].expand(-1, len(struct))
        sy, sx = y[:, None] + struct[None, :, 0], xx[:, None] + struct[None, :, 1]
        inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
        sp, sy, sx = sp[inside], sy[inside], sx[inside]
        u = torch.rand(len(sp), generator=generator, dtype=x.dtype)
        out[sp, sy, sx] = lo[sp] + u.to(x.device) * (hi[sp] - lo[sp])
    out[p, y, xx] = values
    mask = torch.zeros_like(planes, dtype=torch.bool)
    mask[p, y, xx] = True
    return out.reshape(b, c, h, w), mask.reshape(b, c, h, w)


def _shifted(i: Tensor, d: Tensor, n: int) -> Tensor:
    """``i + d``, mirrored to ``i - d`` where that leaves [0, n) (so a border pixel is never replaced by itself,
    as clamping would do), clamped as a last resort on crops narrower than the neighbourhood."""
    j = i + d
    return torch.where((j < 0) | (j >= n), i - d, j).clamp(0, n - 1)


def masked_mse(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the manipulated pixels only."""
    weight = mask.to(output.dtype)
    return ((output - target) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)


@dataclass(kw_only=True)
class Noise2Void(FitsOneImage, NamedNetMethod):
    """Noise2Void (see the module docstring). Options: ``percent`` (of pixels manipulated per crop, 0.2),
    ``roi`` (odd neighbourhood side, 11), ``manipulation`` (uniform or median), ``struct_axis`` / ``span``
    (structN2V's mask; none by default), ``net``/``widths``, ``tta``, ``tile``; fitting one image:
    ``steps`` or ``budget`` (seconds for the whole image), ``lr``, ``crop``, ``batch``."""

    name: ClassVar[str] = "n2v"
    presets: ClassVar[dict] = {
        "fast": {"net": "n2v", "crop": 64, "batch": 8, "lr": 4e-4, "schedule": "cosine", "warmup": 0.02},
        "paper": {"net": "n2v", "crop": 64, "batch": 128, "lr": 4e-4, "schedule": "cosine", "warmup": 0.0},
    }
    #: steps when fitting one image with neither ``steps`` nor ``budget`` given
    default_steps: ClassVar[int] = 400

    net: str = option("n2v")
    percent: float = option(0.2)
    roi: int = option(11)
    manipulation: str = option("uniform")
    struct_axis: str = option("none")
    span: int = option(5)
    # fitting one image (``fit_denoise``): not recorded
    budget: float | None = option(None, saved=False)
    steps: int | None = option(None, saved=False)
    lr: float = option(4e-4, saved=False)
    crop: int = option(64, saved=False)
    batch: int = option(8, saved=False)

    def __post_init__(self):
        super().__post_init__()
        self.percent, self.roi, self.span = float(self.percent), int(self.roi), int(self.span)
        if not 0.0 < self.percent <= 50.0:
            raise InputError(f"{self.name}: percent must be in (0, 50], got {self.percent}")
        if self.roi < 3 or self.roi % 2 == 0:
            raise InputError(f"{self.name}: roi must be an odd number >= 3, got {self.roi}")
        if self.manipulation not in MANIPULATIONS:
            raise InputError(f"{self.name}: manipulation must be one of {', '.join(MANIPULATIONS)}, "
                             f"got {self.manipulation!r}")
        if self.struct_axis not in STRUCT_AXES:
            raise InputError(f"{self.name}: struct_axis must be one of {', '.join(STRUCT_AXES)}, "
                             f"got {self.struct_axis!r}")
        if self.span < 3 or self.span % 2 == 0:
            raise InputError(f"{self.name}: span must be an odd number >= 3, got {self.span}")
        self.lr, self.crop, self.batch = float(self.lr), int(self.crop), int(self.batch)

    def training_step(self, batch: Batch, model: nn.Module, step: int, total: int) -> dict[str, Tensor]:
        y = batch.noisy
        seeds = batch.extra.get("seeds")
        gen = torch.Generator().manual_seed(int(seeds[0]) + 11) if seeds else None
        struct = struct_offsets(self.struct_axis, self.span)
        manipulated, mask = blind_spot_batch(y.cpu(), self.percent, self.roi, self.manipulation, struct, gen)
        out = model(manipulated.to(y.device).contiguous(memory_format=torch.channels_last))
        return {"loss": masked_mse(out, y, mask.to(y.device))}
