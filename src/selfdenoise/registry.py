"""The explicit method registry: name -> method class (learned) or function (classical)."""
from __future__ import annotations

from typing import Callable

from .errors import InputError

#: Learned methods (self-supervised or zero-shot), keyed by CLI name.
METHODS: dict[str, type] = {}
#: Classical baselines: ``fn(image_hwc_float, sigma=None|float, **kw) -> image``.
CLASSICAL: dict[str, Callable] = {}


def _register_builtin() -> None:
    from . import classical
    from .methods.zero_shot import ZeroShot

    METHODS.setdefault(ZeroShot.name, ZeroShot)
    CLASSICAL.setdefault("nlm", classical.nlm)
    CLASSICAL.setdefault("bm3d", classical.bm3d)


def all_names() -> list[str]:
    _register_builtin()
    return sorted(METHODS) + sorted(CLASSICAL)


def check_name(name: str) -> str:
    """Fail early, before any file is read, on an unknown method name."""
    if name not in all_names():
        raise InputError(f"unknown method '{name}' (known: {', '.join(all_names())})")
    return name


def get_method(name: str, **options):
    """Instantiate a learned method by name."""
    _register_builtin()
    if name not in METHODS:
        raise InputError(f"unknown method '{name}' (known: {', '.join(all_names())})")
    return METHODS[name](**options)


def get_classical(name: str) -> Callable:
    _register_builtin()
    if name not in CLASSICAL:
        raise InputError(f"unknown method '{name}' (known: {', '.join(all_names())})")
    return CLASSICAL[name]
