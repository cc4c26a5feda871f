"""Shared implementation of the dataset methods (the contract itself is in ``methods.contract``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..classical.wiener import ENGINES, check_passes, refine_auto
from ..core.augment import augment_modes
from ..core.errors import InputError
from ..core.params import auto_or_off
from ..core.tiling import apply_tiled, apply_tiled_volume, channels_last, tta_apply
from ..nets import NETS, VOLUME_NETS, build_net
from .contract import DataNeeds, OneOptimiser, method_config, option


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def to_channels_last(model: nn.Module) -> nn.Module:
    """channels_last is ~1.7x faster for 3x3 convolutions on CPU (measured: 154 vs 89 GFLOP/s); a network of
    volumes (5-D weights) gets channels_last_3d."""
    volumes = any(p.ndim == 5 for p in model.parameters())
    return model.to(memory_format=torch.channels_last_3d if volumes else torch.channels_last)


#: The CPU recipe of the dataset methods (``--preset fast``): the compact UNet on small crops, many
#: steps. On a CPU budget the number of Adam steps, not pixels per step, limits these networks: Noise2Noise
#: on BSD300 (two fixed noisy realisations, sigma 25), scored on 4 Kodak images, reached 23.4 dB after
#: 5 min with 128x128 crops x 8 (855 steps) and 28.9 dB with 64x64 crops x 4 (4,256 steps). Small batches
#: make noisier gradients: with Adam's default beta2 = 0.999 and no clipping, lr 1e-3 diverged after
#: 5,000 steps (loss 0.011 -> 1785); beta2 = 0.99 (Noise2Noise's own setting) and clipping the gradient
#: norm at 0.1 (about twice its median) keep it stable. Measured on the 2 cores; on a GPU use ``--preset paper``.
#: Re-selected on validation (n2n, gauss25-gray, Set12, 4-minute trainings on BSD400; ``benchmarks/selection/``):
#: the learning rate 5e-4 / 1e-3 / 2e-3 gave 28.73 / 29.02 / 29.02 dB (``gauss25-gray-n2n-lr.json``); then the
#: crop 48 / 64 / 96 gave 29.07 / 29.03 / 28.77 dB (``gauss25-gray-n2n-crop.json``), so 48 (results made
#: before that selection used 64: reproduce them from their commit).
FAST_RECIPE = {"net": "fast", "crop": 48, "batch": 4, "lr": 1e-3, "schedule": "cosine", "warmup": 0.02,
               "betas": (0.9, 0.99), "clip": 0.1}


@dataclass(kw_only=True)
class DatasetMethodBase(OneOptimiser):
    """Shared part of the methods trained on a data set (``contract.DatasetMethod``).

    Options that steer inference (not recorded in model files): ``tta``, the number of flips/rotations
    averaged (at most those of ``augment``); ``tile``, the tile size in pixels; ``refine``, passes of
    collaborative Wiener filtering of the noisy image with the network's output as pilot
    (``classical.wiener``; 0 = off; "auto" = ``classical.wiener.AUTO_PASSES`` passes on white noise, none otherwise);
    ``refine_vst``, "auto" runs those passes through the generalized Anscombe transform when the noise fits a
    Poisson-Gaussian model (fluorescence, photon-limited data), "off" (default) refines in the image's own range;
    ``refine_filter``, "wiener" (``classical.wiener``) or "bm3d" (BM3D's own second stage with the network's
    output as its basic estimate: gray images, the optional bm3d package).
    ``augment``: the flips/rotations drawn in training and averaged by ``tta`` (``core.augment.AUGMENT_MODES``):
    ``dihedral`` (all 8), ``flips`` (the 4 mirrors that keep the axes: OCT B-scans, whose layers and
    speckle have an orientation) or ``none``.
    """

    name: ClassVar[str] = ""
    presets: ClassVar[dict] = {}
    fine_tuning: ClassVar[dict] = {}
    exportable: ClassVar[bool] = True

    tta: int = option(1, saved=False)
    tile: int | None = option(None, saved=False)
    refine: int | str = option(0, saved=False)
    refine_vst: str = option("off", saved=False)
    refine_filter: str = option("wiener", saved=False)
    augment: str = option("dihedral", omit_default=True)
    modes: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self.refine = check_passes(self.refine, self.name)
        self.refine_vst = auto_or_off(self.refine_vst, f"{self.name}: refine_vst")
        if self.refine_filter not in ENGINES:
            raise InputError(f"{self.name}: refine_filter is one of {', '.join(ENGINES)}, not {self.refine_filter!r}")
        self.modes = augment_modes(self.augment, self.name)
        self.tta = max(1, min(len(self.modes), int(self.tta)))

    def config(self) -> dict:
        return method_config(self)

    def data_needs(self) -> DataNeeds:
        return DataNeeds(augment=self.augment)

    def refined(self, noisy: Tensor, estimate: Tensor) -> Tensor:
        """``estimate`` after ``refine`` collaborative Wiener passes (as is when there are none)."""
        return refine_auto(noisy, estimate, self.refine, tile=self.tile, vst=None if self.refine_vst == "auto" else False,
                           engine=self.refine_filter)

    def network_pass(self, model: nn.Module):
        """The network on one tile: averaged over ``tta`` flips/rotations, or one channels-last call."""
        model.eval()
        return (lambda t: tta_apply(model, t, self.tta, self.modes)) if self.tta > 1 else (
            lambda t: model(channels_last(t)))

    @torch.inference_mode()
    def denoise(self, model: nn.Module, noisy: Tensor) -> Tensor:
        return self.refined(noisy, apply_tiled(self.network_pass(model), noisy.float(), self.tile,
                                               multiple=model.multiple))

    @torch.inference_mode()
    def denoise_streamed(self, model: nn.Module, read, shape: tuple[int, ...], emit) -> None:
        """``denoise`` of a volume (B, C, D, H, W) of ``shape`` that need not fit in memory
        (``core.tiling.apply_tiled_volume``): ``read(region)`` gives the noisy input at a region, ``emit(z0, z1,
        planes)`` takes the result's planes in order; equal to ``denoise`` of the whole volume."""
        whole_planes = (slice(None), slice(None))

        def finished(z0: int, z1: int, estimate: Tensor) -> None:
            if self.refine == 0:  # the refinement works plane by plane: it needs those noisy planes only
                return emit(z0, z1, estimate)
            emit(z0, z1, self.refined(read(whole_planes + (slice(z0, z1),) + whole_planes).float(), estimate))

        apply_tiled_volume(self.network_pass(model), lambda region: read(region).float(), shape, finished,
                           self.tile, multiple=model.multiple)


@dataclass(kw_only=True)
class NamedNetMethod(DatasetMethodBase):
    """A dataset method whose network is chosen by name from ``selfdenoise.nets``: ``net`` and ``widths``
    (levels of the compact UNet; None = its defaults)."""

    net: str = option("fast")
    widths: tuple[int, ...] | None = option(None, omit_default=True)

    def __post_init__(self):
        if self.net not in NETS:
            raise InputError(f"unknown network '{self.net}' (known: {', '.join(NETS)})")
        self.widths = tuple(int(w) for w in self.widths) if self.widths else None
        super().__post_init__()
        volumes = self.data_needs().ndim == 3
        if (self.net in VOLUME_NETS) != volumes:
            kind = "volume" if volumes else "image"
            raise InputError(f"{self.name}: network '{self.net}' does not take {kind}s (choose from: "
                             f"{', '.join(n for n in NETS if (n in VOLUME_NETS) == volumes)})")

    def build_model(self, channels: int) -> nn.Module:
        return to_channels_last(build_net(self.net, channels, self.widths))
