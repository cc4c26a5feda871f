"""Neighbor2Neighbor on volumes (Huang et al., CVPR 2021, with a 3-D network): ``--method ne2ne-3d``.

Trained on a noisy ZYX volume itself. The paper's random neighbour sub-sampler, generalised to volumes: on
every plane, each 2x2 in-plane cell gives two different edge-adjacent voxels, drawn independently per cell
and per plane, so a noisy volume ``y`` (D, H, W) yields two sub-volumes ``g1(y)``, ``g2(y)`` (D, H/2, W/2)
with nearly the same signal and independent noise; a 3-D network ``f`` maps one to the other with the
paper's loss

    ``|f(g1 y) - g2 y|^2 + gamma |f(g1 y) - g2 y - (g1 f(y) - g2 f(y))|^2``,  f(y) not differentiated,

the regulariser closing the gap the half-voxel offset leaves; ``gamma`` is ramped as in ``ne2ne``
(``gamma * step / total``).

Why 2x2 in-plane cells rather than 2x2x2 cells: the sub-volumes keep every plane, so the network trains at
the Z sampling it is applied at (a 2x2x2 cell would halve Z as well, and Z is usually the coarsest axis of a
microscopy stack: its two voxels would be a whole plane step apart, a larger signal gap than the in-plane
neighbours'); any depth works, a stack of 7 planes or a single plane; and the noise of the two sub-volumes is
independent all the same, since they never share a voxel. The network (``nets.unet3d``) likewise pools
in-plane only and takes its Z context from 3x3x3 kernels.

Inference is one pass of the network over the whole volume (tiled over Y, X, and Z beyond
``core.tiling.DEPTH_TILE`` planes; ``tta`` averages in-plane flips/rotations); ``refine`` runs the shared
collaborative Wiener refinement plane by plane. A (B, C, H, W) tensor is taken as volumes of one plane.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..core.errors import InputError
from .base import FAST_RECIPE
from .contract import Batch, DataNeeds, option
from .ne2ne import Neighbor2Neighbor, neighbor_loss, seeded_pair_index, subsample, unpadded_crop


def subsample_volume(x: Tensor, idx: Tensor) -> Tensor:
    """One voxel of every 2x2 in-plane cell of every plane: ``x`` (B, C, D, H, W; H, W even) ->
    (B, C, D, H/2, W/2); ``idx`` (B*D, 1, 1, H/2, W/2) holds each plane's choice, sample by sample."""
    b, c, d, h, w = x.shape
    planes = subsample(x.transpose(1, 2).reshape(b * d, c, h, w), idx)
    return planes.view(b, d, c, h // 2, w // 2).transpose(1, 2)


def as_volume(x: Tensor) -> Tensor:
    """(B, C, H, W) images as volumes of one plane; volumes as they are."""
    return x.unsqueeze(2) if x.ndim == 4 else x


#: The CPU recipe: the compact 3-D UNet (widths 32/64/96) on 48x48 crops of 16 planes, two per step (as many
#: voxels per step as four 8-plane crops; 16 planes let the network's +-11-plane reach see mostly real neighbours,
#: not padding). On the 2 cores: 18 steps/s (17 GFLOP a step), and 3 s to denoise a 60 x 256 x 256 volume (one call).
FAST_3D = {**FAST_RECIPE, "net": "unet3d", "batch": 2}


@dataclass(kw_only=True)
class Neighbor2Neighbor3D(Neighbor2Neighbor):
    """Neighbor2Neighbor with a 3-D network on ZYX volumes. ``gamma``: regulariser weight reached at the end
    of training (ramped from 0); ``crop_depth``: planes per training crop (at most the volume's)."""

    name: ClassVar[str] = "ne2ne-3d"
    presets: ClassVar[dict] = {
        "fast": FAST_3D,
        # the paper's optimisation (Adam 3e-4 halved every fifth of training, batch 4, gamma 2) on larger crops
        "paper": {"net": "unet3d", "crop": 128, "batch": 4, "lr": 3e-4, "schedule": "step:0.2:0.5", "warmup": 0.0},
    }

    net: str = option("unet3d")
    crop_depth: int = option(16)

    def __post_init__(self):
        self.crop_depth = int(self.crop_depth)
        if self.crop_depth < 1:
            raise InputError(f"{self.name}: crop_depth must be at least 1, got {self.crop_depth}")
        super().__post_init__()

    def data_needs(self) -> DataNeeds:
        return DataNeeds(augment=self.augment, ndim=3, depth=self.crop_depth)

    def training_step(self, batch: Batch, model: nn.Module, step: int, total: int) -> dict[str, Tensor]:
        y = unpadded_crop(as_volume(batch.noisy), 2 * model.multiple)  # as ne2ne: sub-images the network need not pad
        b, _, d, h, w = y.shape
        idx = seeded_pair_index(batch.extra.get("seeds") or [None] * b, d, h // 2, w // 2)
        loss, rec, reg = neighbor_loss(model, y, self.gamma_at(step, total), idx=idx, sample=subsample_volume)
        return {"loss": loss, "rec": rec.detach(), "reg": reg.detach()}

    def refined(self, noisy: Tensor, estimate: Tensor) -> Tensor:
        """The shared refinement (``DatasetMethodBase.refined``), plane by plane."""
        if self.refine == 0:
            return estimate
        planes = [super(Neighbor2Neighbor3D, self).refined(noisy[:, :, z], estimate[:, :, z])
                  for z in range(noisy.shape[2])]
        return torch.stack(planes, 2)

    @torch.inference_mode()
    def denoise(self, model: nn.Module, noisy: Tensor) -> Tensor:
        out = super().denoise(model, as_volume(noisy))
        return out.squeeze(2) if noisy.ndim == 4 else out
