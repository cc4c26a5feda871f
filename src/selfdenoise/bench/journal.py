"""A benchmark run's journal: each (image, method) result is appended as soon as it is made, so a run that
is killed or fails keeps its work, and the same command run again skips what is done.

The journal lives in ``<results folder>/.journal/<key>.jsonl``, where the key is a digest of everything
that decides the results (protocol, split, test set, commit, seed, subset, methods and their options): a
changed command or a new commit starts afresh. Each line is one result row, flushed and fsynced; a torn
last line (a kill while writing) is ignored. The centre crops of the report are kept beside it as
``<key>/<image>--<method>.npy``. ``finish()`` removes both once the run's result files are written.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.io import atomic_write, save_npy
from .results import json_safe


class Journal:
    def __init__(self, folder: str | os.PathLike, key: dict, resume: bool = True):
        """``resume=False`` (runs of uncommitted code, whose commit does not say what ran) starts afresh."""
        digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
        self.path = Path(folder) / ".journal" / f"{digest}.jsonl"
        self.crops = self.path.with_suffix("")
        self.rows: dict[tuple[str, str], dict] = {}
        if not resume:
            self.finish()
        elif self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a torn last line
                    continue
                self.rows[(entry["image"], entry["method"])] = entry["row"]

    def __len__(self) -> int:
        return len(self.rows)

    def done(self, image: str, method: str) -> dict | None:
        """The row already made for ``image`` by ``method``, or None."""
        return self.rows.get((image, method))

    def add(self, image: str, method: str, row: dict, crop: np.ndarray | None = None) -> None:
        """Record one result (and its report crop) durably before the run goes on."""
        if crop is not None:
            self.crops.mkdir(parents=True, exist_ok=True)

            atomic_write(self._crop_path(image, method), lambda tmp: save_npy(tmp, crop))
        line = json.dumps({"image": image, "method": method, "row": json_safe(row)}) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:  # a full disk: stop with one line; the rows already journalled stay
            raise InputError(f"{self.path}: cannot record a result ({e.strerror or e})") from None
        self.rows[(image, method)] = row

    def crop(self, image: str, method: str) -> np.ndarray | None:
        p = self._crop_path(image, method)
        return np.load(p, allow_pickle=False) if p.is_file() else None

    def finish(self) -> None:
        """Forget the run: its result files are written."""
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.crops, ignore_errors=True)
        try:
            self.path.parent.rmdir()
        except OSError:  # other runs' journals are still there
            pass

    def _crop_path(self, image: str, method: str) -> Path:
        safe = lambda s: "".join(c if c.isalnum() or c in "-_." else "_" for c in s)
        return self.crops / f"{safe(image)}--{safe(method)}.npy"
