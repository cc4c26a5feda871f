"""``-p KEY=VALUE`` option parsing, shared by the CLI and the benchmark runner."""
from __future__ import annotations

from .errors import InputError


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


def parse_values(text: str) -> list:
    """A list of values to try: ``'1e-3,3e-4'`` -> ``[0.001, 0.0003]``; semicolons separate them when a value is a
    tuple (``'48,96;64,128'`` -> ``[(48, 96), (64, 128)]``; one tuple alone: ``'48,96;'``)."""
    return [parse_value(part.strip()) for part in text.split(";" if ";" in text else ",") if part.strip()]


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


def per_method_params(params) -> dict[str, dict]:
    """``["n2n.tta=2", "asym-mask.r3=false"]`` -> ``{"n2n": {"tta": 2}, "asym-mask": {"r3": False}}``."""
    options: dict[str, dict] = {}
    for item in params:
        method, dot, rest = item.partition(".")
        if not dot or not method.strip() or "=" not in rest:
            raise InputError(f"option '{item}' is not METHOD.KEY=VALUE (e.g. n2n.tta=2)")
        options.setdefault(method.strip().lower(), {}).update(parse_params([rest]))
    return options


def whole_or_auto(value, minimum: int, what: str) -> int | str:
    """``value`` as an int >= ``minimum``, or "auto"; anything else is an ``InputError`` saying ``what``
    it should be (e.g. "zero-shot: shuffle is a pixel-shuffle factor >= 1 or 'auto'")."""
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum or value != int(value):
        raise InputError(f"{what}, got {value!r}")
    return int(value)


def number_or_auto(value, valid, what: str) -> float | str:
    """``value`` as a float for which ``valid`` holds, or "auto"; anything else is an ``InputError`` saying
    ``what`` it should be (e.g. "zero-shot: nlm_blend is a weight in 0..1 or 'auto'")."""
    if value == "auto":
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not valid(number):
        raise InputError(f"{what}, got {value!r}")
    return number


def optional(value, kind):
    """``value`` converted by ``kind`` (``int``, ``float``), or None where the option was not given."""
    return None if value is None else kind(value)


def auto_or_off(value, what: str) -> str:
    """"auto" or "off" (``-p KEY=off`` parses as a bool, so True/False are taken too); anything else is an
    ``InputError`` naming ``what`` (e.g. "zero-shot: vst")."""
    value = {True: "auto", False: "off"}.get(value, value)
    if value not in ("auto", "off"):
        raise InputError(f"{what} is 'auto' or 'off', not {value!r}")
    return value
