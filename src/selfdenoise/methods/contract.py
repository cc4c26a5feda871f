"""The method contract: everything the training loops, the API, the exporter and the benchmark may
ask of a method, written down in one place.

A method is a small keyword-only dataclass, not a trainer subclass. Its fields are its options (``-p
KEY=VALUE`` on the CLI); ``config()`` is derived from them (``method_config``), so the configuration a
model file records cannot drift from the constructor. Each kind below is a runtime-checkable
Protocol; the registry (``methods.registry``) declares the kinds of every method, and the contract
tests check that each registered method satisfies them.

- ``DatasetMethod``: trained on a data set by the generic loop (``selfdenoise.training``), then
  reused from a model file. It declares the data it needs (``data_needs``), its training recipes
  (``presets``), its parameter groups and its loss; ``training_step`` gets the model, so a loss can
  re-run it on sub-images, masked inputs or fused images (DeepInverse's convention).
- ``GANMethod``: a dataset method with a critic: ``param_groups`` names the generator and critic
  parameters, ``training_step`` returns one loss per group.
- ``SingleImageMethod``: fits the one image it denoises (``fit_denoise``); its batches come from
  that image (``sample_batch``), its learning rate from ``lr_at``.
- ``SequenceMethod``: the same over a track (frames, points, coords) with NaN gaps.
- ``ImageFilter`` / ``SequenceFilter``: classical functions, ``fn(image, sigma=None, **options)``
  and ``fn(seq, **options)``.

Tensors are float32, shaped (batch, channels, height, width), values nominally in [0, 1]; a method whose
``data_needs().ndim`` is 3 works on volumes (batch, channels, depth, height, width) instead.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: the contract itself imports neither torch nor numpy
    import numpy as np
    from torch import Tensor, nn


@dataclass
class Batch:
    """One training batch: ``noisy`` always; ``target`` only for methods trained on a second
    independent noisy realisation (Noise2Noise); ``mask`` marks valid pixels (1 = valid); ``extra``
    holds what a method's own sampler or data needs add (``seeds``, ``clean`` crops, mask indices)."""

    noisy: Tensor
    target: Tensor | None = None
    mask: Tensor | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DataNeeds:
    """What a dataset method needs from its training data; the loop and the API read only this.

    ``pairs``: a second, independent noisy realisation of each crop as ``batch.target`` (Noise2Noise);
    ``target_frames``: realisations averaged into that target (0: all the other frames of the group);
    ``clean``: unpaired clean crops of other scenes in ``batch.extra["clean"]`` (TCFL);
    ``augment``: the flips/rotations drawn for every crop (``core.augment.AUGMENT_MODES``);
    ``register``: align the repeated frames of each scene before pairing them;
    ``ndim``: 2 for images; 3 for a method of volumes: it trains on crops (B, C, D, H, W) of ``depth`` planes (at
    most the shallowest volume's) cut from ZYX volumes, and its ``denoise`` takes volumes (B, C, D, H, W)."""

    pairs: bool = False
    target_frames: int = 1
    clean: bool = False
    augment: str = "dihedral"
    register: bool = False
    ndim: int = 2
    depth: int = 1


class StopTraining(Exception):
    """Raised by a method's ``training_step`` to end training now, e.g. on a detected collapse. The
    step that raised it makes no update; the model trained so far is returned and saved."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OneOptimiser:
    """``param_groups`` and ``after_step`` of a method with one optimiser over the whole network and nothing to do
    after a step (most methods)."""

    def param_groups(self, model: nn.Module) -> dict:
        return {"": model.parameters()}

    def after_step(self, model: nn.Module, step: int) -> None:
        """Nothing to do after an optimiser step."""


# ------------------------------------------------------------------------------ configuration
def option(default: Any, *, saved: bool = True, omit_default: bool = False):
    """A method option: a dataclass field with its default. ``saved=False``: an inference or fitting
    setting (``tta``, ``tile``, ``budget``...) that a model file does not record; ``omit_default``:
    recorded only when it differs from the default (so files stay readable by older versions)."""
    return field(default=default, metadata={"saved": saved, "omit_default": omit_default})


def method_config(method: Any) -> dict:
    """The saved options of a dataclass method (tuples as lists, ready for JSON): what
    ``registry.get_method(name, **config)`` needs to rebuild the same network and inference rule."""
    config = {}
    for f in dataclasses.fields(method):
        if not f.init or not f.metadata.get("saved", True):
            continue
        value = getattr(method, f.name)
        if f.metadata.get("omit_default") and value == f.default:
            continue
        config[f.name] = list(value) if isinstance(value, tuple) else value
    return config


# ---------------------------------------------------------------------------------- the kinds
@runtime_checkable
class DatasetMethod(Protocol):
    """Trained on a data set, reused from a model file."""

    name: ClassVar[str]
    #: training recipes by name: ``fast`` (the CPU default) and ``paper``; each maps training settings
    #: (``crop``, ``batch``, ``lr``, ``schedule``, ...) and method options to values
    presets: ClassVar[dict[str, dict]]
    #: settings that replace the preset's when the training starts from a model's weights (``init``), e.g. a
    #: lower ``lr``; options given explicitly still win
    fine_tuning: ClassVar[dict]
    #: True when inference is one network pass, so ONNX/TorchScript export captures all of it
    exportable: ClassVar[bool]

    def config(self) -> dict:
        """The saved options (``method_config``)."""
        ...

    def data_needs(self) -> DataNeeds:
        """What the training batches must carry."""
        ...

    def build_model(self, channels: int) -> nn.Module:
        """A fresh network for ``channels``-channel images; it has a ``multiple`` attribute (the
        side multiple it needs; inference tiles are rounded to it). A method of volumes gets a
        network of volumes, its ``multiple`` the in-plane one."""
        ...

    def param_groups(self, model: nn.Module) -> dict[str, Iterable | dict]:
        """Optimiser groups: ``{name: parameters}`` or ``{name: {"params", "lr_scale", "betas",
        "loss"}}``; one optimiser each, stepped on ``out[loss]`` (default ``"loss"`` for the first group,
        ``"<name>_loss"`` for the others). One group ``{"": model.parameters()}`` for most methods."""
        ...

    def training_step(self, batch: Batch, model: nn.Module, step: int, total: int) -> dict[str, Tensor]:
        """``{"loss": scalar tensor, ...}`` (one loss per parameter group; anything else is logged).
        ``total`` is the expected number of steps (an estimate under a time budget). May raise
        ``StopTraining``."""
        ...

    def after_step(self, model: nn.Module, step: int) -> None:
        """Called under ``no_grad`` after every optimiser step (e.g. clipping a critic's weights)."""
        ...

    def denoise(self, model: nn.Module, noisy: Tensor) -> Tensor:
        """The inference rule for a trained model: (B, C, H, W) -> (B, C, H, W), not clipped (volumes
        (B, C, D, H, W) when ``data_needs().ndim`` is 3; a method of volumes also gives the same rule for a
        volume read region by region, ``denoise_streamed(model, read, shape, emit)``, as
        ``base.DatasetMethodBase`` does, for volumes larger than memory)."""
        ...


@runtime_checkable
class GANMethod(DatasetMethod, Protocol):
    """A dataset method with a critic: two parameter groups, each stepped on its own loss."""

    def critic_loss(self, real: Tensor, fakes: list[Tensor]) -> Tensor:
        """The critic's loss from its scores on real (clean) and fake (denoised) images."""
        ...


@runtime_checkable
class SingleImageMethod(Protocol):
    """Fits the one image it denoises (``selfdenoise.methods.fitting.fit_single_image`` runs the loop)."""

    name: ClassVar[str]
    #: True when inference is one pass of the network (averaged over flips), so an exported graph is the denoiser
    exportable: ClassVar[bool]

    def config(self) -> dict: ...

    def build_model(self, channels: int) -> nn.Module: ...

    def sample_batch(self, noisy: Tensor, generator) -> Batch:
        """One training batch drawn from the image (1, C, H, W) with ``generator``."""
        ...

    def training_step(self, batch: Batch, model: nn.Module, step: int, total: int) -> dict[str, Tensor]: ...

    def lr_at(self, step: int, total: int, lr: float) -> float:
        """Learning rate of ``step`` (``total`` = 0 when only a time budget is known)."""
        ...

    def denoise(self, model: nn.Module, noisy: Tensor) -> Tensor: ...

    def fit_denoise(self, noisy: Tensor, seed: int = 0, progress: bool = False) -> Tensor:
        """Fit to ``noisy`` (1, C, H, W) and return its denoised version (1, C, H, W), not clipped. A method that
        is also a ``DatasetMethod`` takes ``weights=`` too: the state of one of its trained models to start from
        (``api.denoise(init=...)``)."""
        ...


@runtime_checkable
class SequenceMethod(Protocol):
    """A learned method for one track (frames, points, coords); NaN = missing."""

    name: ClassVar[str]

    def config(self) -> dict: ...

    def fit_denoise(self, seq, seed: int = 0, progress: bool = False) -> tuple[np.ndarray, dict]:
        """Fit to ``seq`` and return (the denoised track with every gap filled, details)."""
        ...


@runtime_checkable
class ImageFilter(Protocol):
    """A classical image method: ``fn(image (H, W[, C]) float in [0, 1], sigma=None (0-255; None:
    estimated), **options) -> image``."""

    def __call__(self, image: np.ndarray, sigma: float | None = None, **options) -> np.ndarray: ...


@runtime_checkable
class SequenceFilter(Protocol):
    """A classical sequence smoother: ``fn(seq (frames, points, coords), **options) -> seq`` without NaN."""

    def __call__(self, seq: np.ndarray, **options) -> np.ndarray: ...


#: kind name (as the registry declares it) -> Protocol
KINDS: dict[str, type] = {
    "dataset": DatasetMethod,
    "gan": GANMethod,
    "single-image": SingleImageMethod,
    "sequence": SequenceMethod,
    "classical": ImageFilter,
    "smoother": SequenceFilter,
}
