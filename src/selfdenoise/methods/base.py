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
