"""The training log: a CSV file (appended to on resume), plus TensorBoard events when installed."""
from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import InputError


class TrainingLog:
    """CSV log (appended to on resume) plus TensorBoard events when ``tensorboard`` is installed."""

    def __init__(self, path: str | os.PathLike, resume: bool):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fields: list[str] | None = None
        if resume and self.path.is_file():
            with open(self.path) as f:
                self.fields = f.readline().strip().split(",") or None
        else:
            self.path.unlink(missing_ok=True)
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.path.with_suffix("")) + "_tensorboard")
        except Exception:  # tensorboard is optional
            self.tb = None

    def write(self, row: dict) -> None:
        try:
            if self.fields is None:
                self.fields = list(row) + (["val_psnr"] if "val_psnr" not in row else [])
                with open(self.path, "w") as f:
                    f.write(",".join(self.fields) + "\n")
            with open(self.path, "a") as f:
                f.write(",".join(_fmt(row.get(k)) for k in self.fields) + "\n")
        except OSError as e:  # a full disk: one line (the checkpoint written on the way out keeps the work)
            raise InputError(f"{self.path}: cannot write the training log ({e.strerror or e})") from None
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and v is not None:
                    self.tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _fmt(v) -> str:
    if v is None:
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)
