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

from safetensors.torch import load_file, save_file
from torch import nn

from .core.errors import InputError
from .core.io import atomic_write
from .core.tensorfile import read_checked
from .core.version import __version__
from .methods import registry

FORMAT = "selfdenoise-model/1"
#: Metadata keys stored as JSON text (safetensors metadata values are strings).
_JSON_KEYS = ("config", "extra")


def save_model(path: str | os.PathLike, model: nn.Module, *, method: str, channels: int,
               config: dict | None = None, extra: dict | None = None) -> Path:
    """Write ``model``'s weights and metadata atomically (temp file, fsync, rename)."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "method": method, "channels": str(int(channels)), "version": __version__,
            "config": json.dumps(config or {}, sort_keys=True), "extra": json.dumps(extra or {}, sort_keys=True)}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))
    return path


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
