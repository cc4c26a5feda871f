"""The model zoo: models trained by ``selfdenoise train`` on noisy data only, shipped with the package.

Each model is a model file under ``weights/zoo/`` with an entry in ``weights/zoo/zoo.json``: the data it was
trained on (and its terms), the command, seeds and training time, the inference options it was validated with
(applied when it is loaded), and its validation figures. ``benchmarks/train_zoo.py`` makes both. A zoo model
is named ``zoo:NAME`` wherever a model file is taken (``--model zoo:fluorescence``, ``load_model``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .core.errors import InputError

ZOO_DIR = Path(__file__).resolve().parent / "weights" / "zoo"
MANIFEST = ZOO_DIR / "zoo.json"
PREFIX = "zoo:"


def entries() -> dict[str, dict]:
    """The shipped models by name, as the manifest describes them (empty when none are shipped)."""
    if not MANIFEST.is_file():
        return {}
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def is_zoo_name(path: str | os.PathLike) -> bool:
    return str(path).startswith(PREFIX)


def resolve(path: str | os.PathLike) -> tuple[Path, dict]:
    """``(model file, inference options)``: a ``zoo:NAME`` as its shipped file and validated options, any
    other path as itself with none. An unknown name is a one-line error listing the known ones."""
    if not is_zoo_name(path):
        return Path(path), {}
    name = str(path)[len(PREFIX):]
    known = entries()
    if name not in known:
        raise InputError(f"{path}: no such zoo model (known: {', '.join(sorted(known)) or 'none'}; "
                         "`selfdenoise models` lists them)")
    return ZOO_DIR / known[name]["file"], dict(known[name].get("options", {}))
