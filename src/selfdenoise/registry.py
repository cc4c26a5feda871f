"""The explicit method registry: name -> method class (learned) or function (classical).

Adding a method: write ``methods/<name>.py`` (see ``methods/base.py``), add one line here, and it gets
the contract tests of ``tests/unit/test_contract.py`` for free.
"""
from __future__ import annotations

import inspect
from typing import Callable

from . import classical
from .errors import InputError
from .methods.asym_mask import AsymMask
from .methods.n2n import Noise2Noise
from .methods.ne2ne import Neighbor2Neighbor
from .methods.self2self import Self2Self
from .methods.tcfl import TCFL
from .methods.zero_shot import ZeroShot

#: Learned methods (self-supervised or zero-shot), keyed by CLI name.
METHODS: dict[str, type] = {
    ZeroShot.name: ZeroShot,
    Noise2Noise.name: Noise2Noise,
    Neighbor2Neighbor.name: Neighbor2Neighbor,
    Self2Self.name: Self2Self,
    TCFL.name: TCFL,
    AsymMask.name: AsymMask,
}
#: Classical baselines: ``fn(image_hwc_float, sigma=None|float, **kw) -> image``.
CLASSICAL: dict[str, Callable] = {
    "nlm": classical.nlm,
    "bm3d": classical.bm3d,
}


def all_names() -> list[str]:
    return sorted(METHODS) + sorted(CLASSICAL)


def is_classical(name: str) -> bool:
    return name in CLASSICAL


def check_name(name: str) -> str:
    """Fail early, before any file is read, on an unknown method name."""
    if name not in METHODS and name not in CLASSICAL:
        raise InputError(f"unknown method '{name}' (known: {', '.join(all_names())})")
    return name


def method_options(name: str) -> dict:
    """The options a method takes, with their defaults (``inspect.Parameter.empty`` when required)."""
    target = METHODS.get(check_name(name)) or CLASSICAL[name]
    params = inspect.signature(target).parameters
    return {p: v.default for p, v in params.items() if p not in ("image", "sigma")
            and v.kind in (v.KEYWORD_ONLY, v.POSITIONAL_OR_KEYWORD)}


def check_options(name: str, options: dict) -> dict:
    """Fail with one line on an option the method does not take (e.g. ``budget`` for ``nlm``)."""
    known = method_options(name)
    unknown = sorted(set(options) - set(known) - {"sigma"})
    if unknown:
        allowed = ", ".join(known) or "none"
        raise InputError(f"method '{name}' has no option {', '.join(unknown)} (its options: {allowed})")
    return options


def get_method(name: str, **options):
    """Instantiate a learned method by name."""
    if check_name(name) not in METHODS:
        raise InputError(f"method '{name}' is classical: it has no network to build")
    return METHODS[name](**check_options(name, options))


def get_classical(name: str) -> Callable:
    if check_name(name) not in CLASSICAL:
        raise InputError(f"method '{name}' is learned, not classical")
    return CLASSICAL[name]


def parse_value(text: str):
    """'3' -> 3, '0.5' -> 0.5, 'none' -> None, 'true'/'false' (yes/no, on/off) -> bool, '32,64' -> (32, 64),
    anything else stays a string (for KEY=VALUE options)."""
    if "," in text:
        return tuple(parse_value(part.strip()) for part in text.split(",") if part.strip())
    low = text.lower()
    if low == "none":
        return None
    if low in ("true", "yes", "on", "false", "no", "off"):
        return low in ("true", "yes", "on")
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_params(params) -> dict:
    """``["window=15", "polyorder=3"]`` -> ``{"window": 15, "polyorder": 3}`` (CLI ``-p KEY=VALUE``;
    ``-`` in a key becomes ``_``)."""
    options = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"option '{item}' is not KEY=VALUE")
        options[key.strip().replace("-", "_")] = parse_value(value.strip())
    return options
