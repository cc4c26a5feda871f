"""The method contract.

A method is a small object, not a trainer subclass. It says how to build its network, what its
self-supervised loss is (``training_step`` gets the model, so it can run it on sub-images, masked
inputs or fused images) and how to denoise with a trained network (``denoise``). The generic loop in
``selfdenoise.training`` knows nothing about any particular method.

Tensors are float32, shaped (batch, channels, height, width), values nominally in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@dataclass
class Batch:
    """One training batch: ``noisy`` always; ``target`` only for methods trained on a second
    independent noisy realisation (Noise2Noise); ``mask`` marks valid pixels (1 = valid)."""

    noisy: Tensor
    target: Tensor | None = None
    mask: Tensor | None = None
    extra: dict = field(default_factory=dict)


@runtime_checkable
class Method(Protocol):
    name: ClassVar[str]
    #: True when the method fits itself to the very image it denoises (no separate training data).
    zero_shot: ClassVar[bool]

    def build_model(self, channels: int) -> nn.Module: ...

    def training_step(self, batch: Batch, model: nn.Module, step: int, total: int) -> dict[str, Tensor]:
        """Return ``{"loss": scalar tensor, ...anything worth logging}``."""
        ...

    def denoise(self, model: nn.Module, noisy: Tensor) -> Tensor:
        """Inference rule for a trained model: (B, C, H, W) -> (B, C, H, W)."""
        ...


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def to_channels_last(model: nn.Module) -> nn.Module:
    """channels_last is ~1.7x faster for 3x3 convolutions on CPU (measured: 154 vs 89 GFLOP/s)."""
    return model.to(memory_format=torch.channels_last)


#: The CPU recipe of the dataset methods (``--preset fast``): the compact UNet on small crops, many
#: steps. On a CPU budget the number of Adam steps, not pixels per step, limits these networks: Noise2Noise
#: on BSD300 (two fixed noisy realisations, sigma 25), scored on 4 Kodak images, reached 23.4 dB after
#: 5 min with 128x128 crops x 8 (855 steps) and 28.9 dB with 64x64 crops x 4 (4,256 steps). Small batches
#: make noisier gradients: with Adam's default beta2 = 0.999 and no clipping, lr 1e-3 diverged after
#: 5,000 steps (loss 0.011 -> 1785); beta2 = 0.99 (Noise2Noise's own setting) and clipping the gradient
#: norm at 0.1 (about twice its median) keep it stable. Measured on the 2 cores; on a GPU use ``--preset paper``.
FAST_RECIPE = {"net": "fast", "crop": 64, "batch": 4, "lr": 1e-3, "schedule": "cosine", "warmup": 0.02,
               "betas": (0.9, 0.99), "clip": 0.1}


class DatasetMethod:
    """Shared part of the methods trained on a data set (not on the image they denoise).

    Subclasses set ``name``, ``pairs`` (True: the loss needs a second noisy realisation as target),
    ``presets`` (training recipes: network, crop, batch, lr, schedule) and ``training_step``.
    Constructor options rebuild the network (``net``, ``widths``) or steer inference (``tta``: number
    of flips/rotations averaged, 1..8; ``tile``: tile size in pixels; ``refine``: passes of
    collaborative Wiener filtering of the noisy image with the network's output as pilot, see
    ``selfdenoise.wiener``; 0 = off; "auto" = ``wiener.AUTO_PASSES`` passes when the noise is white, none otherwise).
    ``augment``: the flips/rotations drawn in training and averaged by ``tta`` (``data.AUGMENT_MODES``):
    ``dihedral`` (all 8), ``flips`` (the 4 mirrors that keep the axes: OCT B-scans, whose layers and
    speckle have an orientation) or ``none``.
    """

    name: ClassVar[str] = ""
    zero_shot: ClassVar[bool] = False
    pairs: ClassVar[bool] = False
    presets: ClassVar[dict] = {}

    def __init__(self, net: str = "fast", widths: tuple[int, ...] | None = None, tta: int = 1,
                 tile: int | None = None, refine: int | str = 0, augment: str = "dihedral"):
        from ..nets import NETS

        if net not in NETS:
            from ..errors import InputError

            raise InputError(f"unknown network '{net}' (known: {', '.join(NETS)})")
        self.net = net
        self.widths = tuple(int(w) for w in widths) if widths else None
        self.set_inference(tta, tile, refine, augment)

    def set_inference(self, tta: int, tile: int | None, refine: int | str, augment: str = "dihedral") -> None:
        from ..data import augment_modes
        from ..wiener import check_passes

        self.refine = check_passes(refine, self.name)
        self.augment, self.modes = augment, augment_modes(augment, self.name)
        self.tta, self.tile = max(1, min(len(self.modes), int(tta))), tile

    def refined(self, noisy: Tensor, estimate: Tensor) -> Tensor:
        """``estimate`` after ``refine`` collaborative Wiener passes (as is when there are none)."""
        from ..wiener import refine_auto

        return refine_auto(noisy, estimate, self.refine, tile=self.tile)

    def config(self) -> dict:
        """What ``get_method(name, **config)`` needs to rebuild the same network."""
        return {"net": self.net, **({"widths": list(self.widths)} if self.widths else {}), **self.augment_config()}

    def augment_config(self) -> dict:
        """``augment`` for the model file, only when not the default (older files have none)."""
        return {"augment": self.augment} if self.augment != "dihedral" else {}

    def build_model(self, channels: int) -> nn.Module:
        from ..nets import build_net

        return to_channels_last(build_net(self.net, channels, self.widths))

    @torch.inference_mode()
    def denoise(self, model: nn.Module, noisy: Tensor) -> Tensor:
        from ..inference import apply_tiled, tta_apply

        model.eval()
        fn = (lambda t: tta_apply(model, t, self.tta, self.modes)) if self.tta > 1 else (
            lambda t: model(t.contiguous(memory_format=torch.channels_last)))
        return self.refined(noisy, apply_tiled(fn, noisy.float(), self.tile, multiple=getattr(model, "multiple", 16)))
