"""What decides a training run (``TrainConfig``, stored in checkpoints) and what it returns (``TrainResult``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..core.errors import InputError
from .schedule import lr_factor


@dataclass
class TrainConfig:
    """Everything that decides a training run (stored in checkpoints, so ``resume`` continues it)."""

    steps: int | None = None  # stop after this many steps ...
    minutes: float | None = None  # ... or this much wall time (schedules then follow the time)
    batch: int = 8  # global batch (split over torchrun processes)
    crop: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | adamw
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "cosine"  # see SCHEDULES; fractions are of the whole run
    warmup: float = 0.0  # linear warm-up, fraction of the run
    clip: float | None = None  # clip the gradient norm to this
    ema: float = 0.0  # decay of an exponential moving average of the weights, the model returned (0: the last weights)
    seed: int = 0
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    val_every: int = 0  # steps between validations (0: only at the end)
    checkpoint_every: int = 0  # steps between checkpoints (0: none by steps)
    checkpoint_minutes: float = 5.0  # minutes between checkpoints (0: none by time); always when interrupted
    log_every: int = 10

    def check(self) -> None:
        if self.steps is None and self.minutes is None:
            raise InputError("give the length of training: steps or minutes")
        if self.steps is not None and self.steps < 1 or self.minutes is not None and self.minutes <= 0:
            raise InputError("steps and minutes must be positive")
        if self.batch < 1 or self.crop < 8 or self.crop % 2:
            raise InputError(f"batch must be >= 1 and crop an even number >= 8 (got batch {self.batch}, crop {self.crop})")
        if self.optimizer not in ("adam", "adamw"):
            raise InputError(f"unknown optimizer '{self.optimizer}' (adam, adamw)")
        if not 0.0 <= self.ema < 1.0:
            raise InputError(f"ema is a decay in [0, 1) (0: off), not {self.ema}")
        lr_factor(self.schedule, 0.0)


@dataclass
class TrainResult:
    model: nn.Module
    steps: int
    seconds: float
    interrupted: bool = False
    history: list[dict] = field(default_factory=list)
    val_psnr: float | None = None
    gflops_per_s: float | None = None
    flops_per_step: float | None = None
    path: str | None = None  # the model file written (``api.train``)
    stopped: str | None = None  # why training ended early (``StopTraining``), else None
    data: dict | None = None  # summary of the data trained on, as the model file records it (``api.train``)
