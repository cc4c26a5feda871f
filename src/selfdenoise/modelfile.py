"""Trained models on disk: safetensors weights with JSON metadata in the file's own header.

Loading never unpickles, so a model file from a stranger cannot run code. The metadata says which
method made the model, with which configuration and for how many channels; ``load_model`` rebuilds
the network through the method registry and loads the weights into it.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from torch import nn

from .errors import InputError
from .io import atomic_write

FORMAT = "selfdenoise-model/1"
#: Metadata keys stored as JSON text (safetensors metadata values are strings).
_JSON_KEYS = ("config", "extra")


def save_model(path: str | os.PathLike, model: nn.Module, *, method: str, channels: int,
               config: dict | None = None, extra: dict | None = None) -> Path:
    """Write ``model``'s weights and metadata atomically (temp file, fsync, rename)."""
    from safetensors.torch import save_file

    from . import __version__

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "method": method, "channels": str(int(channels)), "version": __version__,
            "config": json.dumps(config or {}, sort_keys=True), "extra": json.dumps(extra or {}, sort_keys=True)}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))
    return path


def read_checked(path: str | os.PathLike, fmt: str, kind: str, load):
    """Open a safetensors file, check that its metadata says ``format == fmt`` and return
    ``(metadata, load(handle))``; every failure is a one-line ``InputError`` naming ``kind``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such {kind}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            loaded = load(f)
    except Exception as e:  # safetensors raises its own error types for non-safetensors files
        raise InputError(f"{path}: not a selfdenoise {kind} ({type(e).__name__})") from None
    if meta.get("format") != fmt:
        raise InputError(f"{path}: not a selfdenoise {kind} (format {meta.get('format')!r}, expected {fmt!r})")
    return meta, loaded


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata of a model file (config and extra decoded), without reading the weights."""
    meta, n_params = read_checked(path, FORMAT, "model file",
                                  lambda f: sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys()))
    for key in _JSON_KEYS:
        meta[key] = json.loads(meta.get(key) or "{}")
    meta["channels"] = int(meta["channels"])
    meta["parameters"] = n_params
    return meta


def load_model(path: str | os.PathLike):
    """Rebuild a saved model: returns ``(method, model, metadata)`` with the model in eval mode."""
    from safetensors.torch import load_file

    from . import registry

    meta = read_metadata(path)
    method = registry.get_method(meta["method"], **meta["config"])
    model = method.build_model(meta["channels"])
    state = load_file(str(path))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise InputError(f"{path}: weights do not fit method '{meta['method']}' ({first})") from None
    return method, model.eval(), meta
