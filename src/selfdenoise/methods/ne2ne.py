"""Neighbor2Neighbor (Huang et al., CVPR 2021): ``--method ne2ne``.

Trains on single noisy images. Every 2x2 cell gives two different edge-adjacent pixels, so each
noisy crop yields two half-size sub-images ``g1(y)``, ``g2(y)`` with (nearly) the same signal and
independent noise; the network maps one to the other. The regulariser
``|f(g1 y) - g2 y - (g1 f(y) - g2 f(y))|^2`` (f(y) not differentiated) closes the gap left by the
half-pixel offset. Its weight is ramped like the original code: ``gamma * epoch / n_epochs``, here
``gamma * step / total`` (DeepInverse's port keeps it constant).

Paper recipe (``--preset paper``): its UNet (48 features), 256x256 crops, batch 4, Adam 3e-4
halved every fifth of training, gamma 2. The CPU default (``base.FAST_RECIPE``) uses the compact
pixel-unshuffle UNet on 64x64 crops (McMaster validation's choice).

The sub-images are kept whole multiples of the network's ``multiple`` (crops are trimmed to a multiple of
twice it): a network that always saw its own edge padding in training (48x48 crops give 24x24 sub-images,
padded to 32) learns to undo it, and on an image it does not pad (a side a multiple of 16: Set12, Kodak) it
leaves artefacts along the bottom and right edges (Set12 validation, 10 minutes: 25.7 dB, 28.6 once padded).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.tiling import channels_last
from .base import FAST_RECIPE, NamedNetMethod
from .contract import Batch, option

# The eight ordered pairs of edge-adjacent positions inside a 2x2 cell, positions numbered
# 0=(0,0), 1=(0,1), 2=(1,0), 3=(1,1) (the order ``pixel_unshuffle`` uses).
_PAIRS = torch.tensor([[0, 1], [0, 2], [1, 0], [1, 3], [2, 0], [2, 3], [3, 1], [3, 2]])


def neighbor_pair_index(batch: int, h2: int, w2: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Random neighbour sub-sampler (Neighbor2Neighbor, Huang et al. 2021): for every 2x2 cell pick
    two different edge-adjacent pixels. Returns two index maps (B, 1, 1, h2, w2) into the 4 cell
    positions."""
    k = torch.randint(0, 8, (batch, h2, w2), generator=generator)
    pair = _PAIRS[k]
    return pair[..., 0].view(batch, 1, 1, h2, w2), pair[..., 1].view(batch, 1, 1, h2, w2)


def seeded_pair_index(seeds: list[int | None], planes: int, h2: int, w2: int) -> tuple[Tensor, Tensor]:
    """``neighbor_pair_index`` for a batch, each sample's ``planes`` index maps drawn from its own seed (the
    data's ``extra["seeds"]``, so a batch is reproducible whatever its layout; None: the global generator)."""
    parts = [neighbor_pair_index(planes, h2, w2, None if s is None else torch.Generator().manual_seed(s + 1))
             for s in seeds]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def subsample(x: Tensor, idx: Tensor) -> Tensor:
    """Gather one pixel of every 2x2 cell of ``x`` (B, C, H, W; H, W even) -> (B, C, H/2, W/2)."""
    b, c, h, w = x.shape
    cells = F.pixel_unshuffle(x, 2).view(b, c, 4, h // 2, w // 2)
    return torch.gather(cells, 2, idx.expand(b, c, 1, h // 2, w // 2)).squeeze(2)


def unpadded_crop(y: Tensor, multiple: int) -> Tensor:
    """``y`` (..., H, W) trimmed to the largest multiple of ``multiple`` in each side that has one (as is
    where a side is shorter), so that the network never pads the sub-images it trains on."""
    h, w = (n - n % multiple if n >= multiple else n for n in y.shape[-2:])
    return y[..., :h, :w]


def neighbor_loss(
    model: nn.Module,
    y: Tensor,
    gamma: float,
    generator: torch.Generator | None = None,
    idx: tuple[Tensor, Tensor] | None = None,
    sample: Callable[[Tensor, Tensor], Tensor] = subsample,
) -> tuple[Tensor, Tensor, Tensor]:
    """Neighbor2Neighbor loss on noisy images ``y`` (H, W even):
    ``|f(g1 y) - g2 y|^2 + gamma |f(g1 y) - g2 y - (g1 f(y) - g2 f(y))|^2`` with f(y) not
    differentiated. ``sample(x, idx)`` is the sub-sampler ``idx`` indexes (``subsample``; volumes bring
    their own). Returns (total, reconstruction, regulariser)."""
    if idx is None:
        b, _, h, w = y.shape
        idx = neighbor_pair_index(b, h // 2, w // 2, generator)
    i1, i2 = idx
    with torch.no_grad():
        fy = model(y)
        exp_diff = sample(fy, i1) - sample(fy, i2)
    s1, s2 = sample(y, i1), sample(y, i2)
    out = model(channels_last(s1))
    diff = out - s2
    rec = diff.pow(2).mean()
    reg = (diff - exp_diff).pow(2).mean()
    return rec + gamma * reg, rec, reg


@dataclass(kw_only=True)
class Neighbor2Neighbor(NamedNetMethod):
    """Neighbor2Neighbor on a folder of single noisy images. ``gamma``: regulariser weight reached at
    the end of training (ramped from 0)."""

    name: ClassVar[str] = "ne2ne"
    presets: ClassVar[dict] = {
        "fast": {**FAST_RECIPE, "crop": 64},
        "paper": {"net": "unet", "crop": 256, "batch": 4, "lr": 3e-4, "schedule": "step:0.2:0.5", "warmup": 0.0},
    }
    #: from a model (``init``: the n2n zoo model, say) a lower rate: McMaster validation, 10 minutes from
    #: zoo:gauss-color with one Wiener pass, 31.28 dB with 3e-4 against 31.18 with 1e-3
    #: (``benchmarks/selection/gauss25-color-ne2ne-lr.json``); from zoo:poisson-color with Poisson noise, 30.89 with
    #: 3e-4 against 30.83 with 1e-4 (``poisson30-color-ne2ne-lr.json``)
    fine_tuning: ClassVar[dict] = {"lr": 3e-4}

    gamma: float = option(2.0)

    def __post_init__(self):
        super().__post_init__()
        self.gamma = float(self.gamma)

    def gamma_at(self, step: int, total: int) -> float:
        """The regulariser weight at ``step`` of ``total``: ramped linearly to ``gamma``."""
        return self.gamma * (step / total if total > 0 else 1.0)

    def training_step(self, batch: Batch, model: nn.Module, step: int, total: int) -> dict[str, Tensor]:
        y = unpadded_crop(batch.noisy, 2 * model.multiple)
        b, _, h, w = y.shape
        idx = seeded_pair_index(batch.extra.get("seeds") or [None] * b, 1, h // 2, w // 2)
        loss, rec, reg = neighbor_loss(model, y, self.gamma_at(step, total), idx=idx)
        return {"loss": loss, "rec": rec.detach(), "reg": reg.detach()}
