"""Safetensors files with a checked ``format`` in their metadata (model files, checkpoints): never unpickled."""
from __future__ import annotations

import os
from pathlib import Path

from safetensors import safe_open

from .errors import InputError


def read_checked(path: str | os.PathLike, fmt: str, kind: str, load):
    """Open a safetensors file, check that its metadata says ``format == fmt`` and return
    ``(metadata, load(handle))``; every failure is a one-line ``InputError`` naming ``kind``."""
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
