"""The explicit method registry: every method by the name users type, with the kinds of the contract it
satisfies (``methods.contract.KINDS``) and a one-line summary.

Listing the methods imports none of them: each module is loaded on first use (``lazy_loader``, the
Scientific Python SPEC 1 idiom, declared in each package's ``__init__``), so ``selfdenoise methods`` and ``--help`` never import torch. Adding a
method: write ``methods/<name>.py`` (see ``methods.contract``), add one line here, and it gets the
contract tests of ``tests/unit/test_contract.py`` for free.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from .. import classical, methods, sequences
from ..core.errors import InputError


@dataclass(frozen=True)
class Entry:
    """One registered method: ``package.module.attr`` (a method class, or a function for the classical
    ones); the packages load their modules on first use."""

    package: Any
    module: str
    attr: str
    kinds: tuple[str, ...]
    summary: str

    @property
    def module_name(self) -> str:
        return f"{self.package.__name__}.{self.module}"

    @property
    def target(self) -> Any:
        """The method class or function (imports its module on first use)."""
        return getattr(getattr(self.package, self.module), self.attr)


#: Image methods (learned and classical), keyed by CLI name.
IMAGE_METHODS: dict[str, Entry] = {
    "zero-shot": Entry(methods, "zero_shot", "ZeroShot", ("single-image",),
                       "a shipped self-supervised prior adapted to the image itself (the default)"),
    "n2n": Entry(methods, "n2n", "Noise2Noise", ("dataset",), "Noise2Noise: pairs of independent noisy realisations"),
    "ne2ne": Entry(methods, "ne2ne", "Neighbor2Neighbor", ("dataset",), "Neighbor2Neighbor: single noisy images"),
    "ne2ne-3d": Entry(methods, "ne2ne_3d", "Neighbor2Neighbor3D", ("dataset",),
                      "Neighbor2Neighbor with a 3-D network: a noisy ZYX volume itself"),
    "self2self": Entry(methods, "self2self", "Self2Self", ("dataset", "single-image"),
                       "Self2Self: Bernoulli-dropout ensemble on one image (or a prior trained on noisy images)"),
    "tcfl": Entry(methods, "tcfl", "TCFL", ("dataset", "gan"), "TCFL: noisy scans plus unpaired clean ones (OCT)"),
    "asym-mask": Entry(methods, "asym_mask", "AsymMask", ("dataset", "single-image"),
                       "asymmetric masks on pixel-shuffled images: real camera noise"),
    "n2v": Entry(methods, "n2v", "Noise2Void", ("dataset", "single-image"),
                 "Noise2Void: blind-spot masking on single noisy images (microscopy)"),
    "n2v2": Entry(methods, "n2v2", "N2V2", ("dataset", "single-image"),
                  "N2V2: Noise2Void without its checkerboard artefacts (CAREamics' default)"),
    "struct-n2v": Entry(methods, "struct_n2v", "StructN2V", ("dataset", "single-image"),
                        "structN2V: a line-shaped blind spot for noise correlated along rows or columns"),
    "nlm": Entry(classical, "baselines", "nlm", ("classical",), "non-local means (scikit-image)"),
    "bm3d": Entry(classical, "baselines", "bm3d", ("classical",), "BM3D / CBM3D (the optional, non-commercial bm3d package)"),
}
#: Sequence methods (tracks: frames x points x coords), keyed by CLI name.
SEQUENCE_METHODS: dict[str, Entry] = {
    "self2self": Entry(methods, "self2self_1d", "Self2Self1D", ("sequence",), "Self2Self over time, fitted to the track"),
    "savgol": Entry(sequences, "smoothers", "savgol", ("smoother",), "Savitzky-Golay"),
    "gaussian": Entry(sequences, "smoothers", "gaussian", ("smoother",), "Gaussian smoothing over time"),
    "one-euro": Entry(sequences, "smoothers", "one_euro", ("smoother",), "the One Euro filter (causal)"),
}
#: Learned image methods, and classical image baselines.
LEARNED = tuple(n for n, e in IMAGE_METHODS.items() if "classical" not in e.kinds)
CLASSICAL = tuple(n for n, e in IMAGE_METHODS.items() if "classical" in e.kinds)


def all_names() -> list[str]:
    return sorted(LEARNED) + sorted(CLASSICAL)


def names(kind: str) -> list[str]:
    """The image methods of one kind (``dataset``, ``single-image``, ``gan``, ``classical``), sorted."""
    return sorted(n for n, e in IMAGE_METHODS.items() if kind in e.kinds)


def is_classical(name: str) -> bool:
    return name in CLASSICAL


def check_name(name: str) -> str:
    """Fail early, before any file is read, on an unknown method name."""
    if name not in IMAGE_METHODS:
        raise InputError(f"unknown method '{name}' (known: {', '.join(all_names())})")
    return name


def kinds(name: str) -> tuple[str, ...]:
    return IMAGE_METHODS[check_name(name)].kinds


def method_class(name: str) -> type:
    """The class of a learned image method."""
    if check_name(name) not in LEARNED:
        raise InputError(f"method '{name}' is classical: it has no network to build")
    return IMAGE_METHODS[name].target


def _options(target: Callable, skip: tuple[str, ...]) -> dict:
    params = inspect.signature(target).parameters
    return {p: v.default for p, v in params.items() if p not in skip
            and v.kind in (v.KEYWORD_ONLY, v.POSITIONAL_OR_KEYWORD)}


def method_options(name: str) -> dict:
    """The options an image method takes, with their defaults (``inspect.Parameter.empty`` when required)."""
    return _options(IMAGE_METHODS[check_name(name)].target, ("image", "sigma"))


def check_options(name: str, options: dict) -> dict:
    """Fail with one line on an option the method does not take (e.g. ``budget`` for ``nlm``)."""
    known = method_options(name)
    unknown = sorted(set(options) - set(known) - {"sigma"})
    if unknown:
        allowed = ", ".join(known) or "none"
        raise InputError(f"method '{name}' has no option {', '.join(unknown)} (its options: {allowed})")
    return options


def get_method(name: str, **options):
    """Instantiate a learned image method by name."""
    return method_class(name)(**check_options(name, options))


def get_classical(name: str) -> Callable:
    if check_name(name) not in CLASSICAL:
        raise InputError(f"method '{name}' is learned, not classical")
    return IMAGE_METHODS[name].target


def check_sequence_method(name: str) -> str:
    if name not in SEQUENCE_METHODS:
        raise InputError(f"unknown sequence method '{name}' (known: {', '.join(SEQUENCE_METHODS)})")
    return name


def sequence_options(name: str) -> dict:
    """The keyword options a sequence method takes, with their defaults."""
    return _options(SEQUENCE_METHODS[check_sequence_method(name)].target, ("seq",))
