"""Noise2Noise (Lehtinen et al., ICML 2018): ``--method n2n``.

Learns from pairs of independent noisy realisations of the same scene: the network maps one to the
other, and because the target noise has zero mean (L2), zero median (L1) or a mode at the signal
(annealed L0), the minimiser is the clean image. Pairs come from ``a/`` and ``b/`` folders, from
groups of repeated frames, or from two fresh draws of a synthetic noise spec per sample (the paper).

Losses: ``l2`` (Gaussian, Poisson), ``l1`` (text overlays: the median is the clean image), ``l0``
(``(|f(x) - y| + 1e-8)^gamma`` with gamma annealed linearly from 2 to 0, for random-valued impulse
noise). For Bernoulli noise the loss counts only the target's observed pixels (the paper's masked loss).

``target_frames`` > 1 (an addition to the paper): the target is the mean of that many other realisations
(``0``: all the other frames of the group, e.g. the 4 other B-scans of an OCT eye). It has the same
expectation as one realisation (the L2 minimiser is unchanged) and less noise, so the gradient is less noisy.

``register`` (default on; an addition to the paper): repeated real frames of one scene are first aligned by
integer translations (``training.registration.register_group``), since a target shifted by eye or stage motion teaches blur.

Paper recipe (``--preset paper``): its UNet, 256x256 crops, batch 4, Adam 3e-4 (beta2 0.99) with the
last 30% of training ramped down as ``(0.5 + cos(pi t) / 2)^2``. ``--net srresnet`` gives the paper's
other network. The CPU default (``base.FAST_RECIPE``) uses the compact pixel-unshuffle UNet on 48x48 crops.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from ..core.errors import InputError
from .base import FAST_RECIPE, NamedNetMethod
from .contract import Batch, DataNeeds, option

LOSSES = ("l2", "l1", "l0")


@dataclass(kw_only=True)
class Noise2Noise(NamedNetMethod):
    """Noise2Noise. ``loss``: l2 | l1 | l0 (annealed); ``target_frames``: realisations averaged into
    the target (1: the paper; 0: all other frames of the group); ``register``: align repeated frames first."""

    name: ClassVar[str] = "n2n"
    presets: ClassVar[dict] = {
        "fast": FAST_RECIPE,
        "paper": {"net": "unet", "crop": 256, "batch": 4, "lr": 3e-4, "schedule": "rampdown:0.3", "warmup": 0.0,
                  "betas": (0.9, 0.99)},
    }

    loss: str = option("l2")
    target_frames: int = option(1)
    register: bool = option(True, omit_default=True)

    def __post_init__(self):
        super().__post_init__()
        if self.loss not in LOSSES:
            raise InputError(f"n2n: unknown loss '{self.loss}' (choose from: {', '.join(LOSSES)})")
        if int(self.target_frames) < 0:
            raise InputError(f"n2n: target_frames must be >= 1, or 0 for all other frames; got {self.target_frames}")
        if int(self.target_frames) != 1 and self.loss != "l2":
            raise InputError(f"n2n: averaged targets (target_frames={self.target_frames}) keep the mean, so they "
                             f"need the l2 loss, not {self.loss}")
        self.target_frames, self.register = int(self.target_frames), bool(self.register)

    def data_needs(self) -> DataNeeds:
        return DataNeeds(pairs=True, target_frames=self.target_frames, augment=self.augment, register=self.register)

    def training_step(self, batch: Batch, model: nn.Module, step: int, total: int) -> dict[str, Tensor]:
        if batch.target is None:
            raise InputError("n2n needs a second noisy realisation as the target")
        err = model(batch.noisy) - batch.target
        if self.loss == "l2":
            per_pixel = err.pow(2)
        elif self.loss == "l1":
            per_pixel = err.abs()
        else:
            gamma = max(0.0, 2.0 * (1.0 - step / total)) if total > 0 else 2.0
            per_pixel = (err.abs() + 1e-8).pow(gamma)
        if batch.mask is not None:
            m = batch.mask.expand_as(per_pixel)
            loss = (per_pixel * m).sum() / m.sum().clamp_min(1.0)
        else:
            loss = per_pixel.mean()
        return {"loss": loss}
