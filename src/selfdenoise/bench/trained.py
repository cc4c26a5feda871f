"""Training a dataset method on a protocol's noisy training set, with its PSNR-vs-time curve."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .. import api
from ..core import metrics
from ..methods import registry
from .protocols import (
    Protocol,
    TestSet,
    protocol_clean_images,
    protocol_training_set,
    test_pair,
)


def recipe(train_metadata: dict) -> dict:
    """The training settings (crop, batch, lr, ...) a model was trained with, from its ``train`` metadata."""
    return {k: v for k, v in train_metadata.get("config", {}).items() if k in api.TRAIN_KEYS}


def say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def train_for_protocol(proto: Protocol, data_dir: Path, method: str, out_path: Path, ts: TestSet, curve_images,
                       base_seed: int, *, minutes: float | None = None, steps: int | None = None,
                       preset: str = "fast", device: str = "auto", snapshots: int = 6, progress: bool = True,
                       **options) -> dict:
    """Train ``method`` on the protocol's noisy training set (``model`` saved as
    ``out_path/<method>.sdm``) and measure the PSNR-vs-training-time curve on ``curve_images`` (the
    first test images) from ``snapshots`` in-memory snapshots of the same run."""
    needs = registry.get_method(method, **{k: v for k, v in options.items() if k not in api.TRAIN_KEYS}).data_needs()
    data = protocol_training_set(proto, data_dir, needs, base_seed)
    if needs.clean:
        data = data.with_clean(*protocol_clean_images(proto, data_dir, method))
    say(progress, f"training {method} on {data.summary()} for "
                   f"{f'{minutes:g} min' if minutes else f'{steps} steps'} ({preset})")
    marks = [(k + 1) / snapshots for k in range(snapshots - 1)]
    states: list[dict] = []

    def snapshot(step: int, info: dict) -> None:
        frac = max(step / steps if steps else 0.0, info["seconds"] / (minutes * 60.0) if minutes else 0.0)
        if marks and frac >= marks[0]:
            marks.pop(0)
            states.append({"step": step, "seconds": round(info["seconds"], 1),
                           "state": {k: v.detach().clone() for k, v in info["model"].state_dict().items()}})

    out_path.mkdir(parents=True, exist_ok=True)
    r = api.train(data, method, out_path / f"{method}.sdm", minutes=minutes, steps=steps, preset=preset,
                  device=device, progress=progress, on_step=snapshot, log=out_path / f"{method}.train.csv",
                  **options)
    trained = r.model
    final = {"step": r.steps, "seconds": round(r.seconds, 1), "state": None}
    tests = [test_pair(ts, item, base_seed) for item in curve_images]
    curve = []
    keep = {k: v.clone() for k, v in trained.network.state_dict().items()}
    for snap in states + [final]:
        if snap["state"] is not None:
            trained.network.load_state_dict(snap["state"])
        else:
            trained.network.load_state_dict(keep)
        psnr = [metrics.evaluate_pair(c, trained.denoise(x), ts.metric)["psnr"] for c, x in tests]  # as scored
        curve.append({"step": snap["step"], "train_seconds": snap["seconds"], "psnr": float(np.mean(psnr))})
    trained.network.load_state_dict(keep)
    return {"trained_model": trained, "seconds": round(r.seconds, 1), "steps": r.steps,
            "gflops_per_s": r.gflops_per_s, "flops_per_step": r.flops_per_step, "preset": preset,
            "recipe": recipe(r.model.metadata["extra"]["train"]),
            "device": str(next(trained.network.parameters()).device), "minutes": minutes,
            "data": r.data, "model_file": f"{method}.sdm",
            "method_config": trained.method.config(),
            "curve": {"images": [item.name for item in curve_images], "points": curve}}
