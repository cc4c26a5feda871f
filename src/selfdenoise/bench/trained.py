"""Training a dataset method on a protocol's noisy training set, with its PSNR-vs-time curve."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .. import api
from ..core import metrics
from ..core.io import atomic_write
from ..methods import registry
from .protocols import (
    Protocol,
    TestSet,
    protocol_clean_images,
    protocol_training_set,
    test_pair,
    test_volume,
)
from .results import json_safe


def recipe(train_metadata: dict) -> dict:
    """The training settings (crop, batch, lr, ...) a model was trained with, from its ``train`` metadata."""
    return {k: v for k, v in train_metadata.get("config", {}).items() if k in api.TRAIN_KEYS}


def say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def train_for_protocol(proto: Protocol, data_dir: Path, method: str, out_path: Path, ts: TestSet, curve_images,
                       base_seed: int, *, minutes: float | None = None, steps: int | None = None,
                       preset: str = "fast", device: str = "auto", checkpoint_minutes: float = 5.0,
                       snapshots: int = 6, keep: Path | None = None, progress: bool = True, **options) -> dict:
    """Train ``method`` on the protocol's noisy training set (``model`` saved as
    ``out_path/<method>.sdm``) and measure the PSNR-vs-training-time curve on ``curve_images`` (the
    first test images) from ``snapshots`` snapshots of the same run.

    ``keep``: a folder of this run's own (the bench journal's), where each snapshot and the end of the
    training are recorded as they happen, so the same call after a kill goes on where it stopped: from the
    training's checkpoint, or with the model file it finished."""
    model_file = out_path / f"{method}.sdm"
    finished = keep / f"{method}.trained.json" if keep is not None else None
    states = _kept_snapshots(keep, method)
    if finished is not None and finished.is_file() and model_file.is_file():
        say(progress, f"{method}: trained by the interrupted run ({model_file})")
        trained, fit = api.load_model(model_file), json.loads(finished.read_text())
    else:
        needs = registry.get_method(method, **{k: v for k, v in options.items() if k not in api.TRAINING_SETTINGS}).data_needs()
        data = protocol_training_set(proto, data_dir, needs, base_seed)
        if needs.clean:
            data = data.with_clean(*protocol_clean_images(proto, data_dir, method))
        say(progress, f"training {method} on {data.summary()} for "
                       f"{f'{minutes:g} min' if minutes else f'{steps} steps'} ({preset})")
        marks = [(k + 1) / snapshots for k in range(snapshots - 1)][len(states):]

        def snapshot(step: int, info: dict) -> None:
            frac = max(step / steps if steps else 0.0, info["seconds"] / (minutes * 60.0) if minutes else 0.0)
            if marks and frac >= marks[0]:
                marks.pop(0)
                states.append({"step": step, "seconds": round(info["seconds"], 1),
                               "state": {k: v.detach().clone() for k, v in info["model"].state_dict().items()}})
                if keep is not None:
                    _keep_snapshot(keep, method, len(states) - 1, states[-1])

        out_path.mkdir(parents=True, exist_ok=True)
        r = api.train(data, method, model_file, minutes=minutes, steps=steps, preset=preset, device=device,
                      progress=progress, on_step=snapshot, log=out_path / f"{method}.train.csv",
                      checkpoint_minutes=checkpoint_minutes, **options)
        trained = r.model
        fit = {"seconds": round(r.seconds, 1), "steps": r.steps, "gflops_per_s": r.gflops_per_s,
               "flops_per_step": r.flops_per_step, "data": r.data,
               "device": str(next(trained.network.parameters()).device)}
        if finished is not None:
            keep.mkdir(parents=True, exist_ok=True)
            atomic_write(finished, lambda tmp: Path(tmp).write_text(json.dumps(json_safe(fit))))
    final = {"step": fit["steps"], "seconds": fit["seconds"], "state": None}
    tests = [test_pair(ts, item, base_seed) for item in curve_images]
    curve = []
    weights = {k: v.clone() for k, v in trained.network.state_dict().items()}
    for snap in states + [final]:
        trained.network.load_state_dict(snap["state"] if snap["state"] is not None else weights)
        outputs = denoised_test_images(trained, ts, curve_images, [x for _, x in tests], base_seed)
        psnr = [metrics.evaluate_pair(c, out, ts.metric)["psnr"] for (c, _), out in zip(tests, outputs)]  # as scored
        curve.append({"step": snap["step"], "train_seconds": snap["seconds"], "psnr": float(np.mean(psnr))})
    trained.network.load_state_dict(weights)
    return {"trained_model": trained, **fit, "preset": preset,
            "recipe": recipe(trained.metadata["extra"]["train"]), "minutes": minutes,
            "model_file": f"{method}.sdm", "method_config": trained.method.config(),
            "curve": {"images": [item.name for item in curve_images], "points": curve}}


def denoised_test_images(trained: api.TrainedModel, ts: TestSet, items, noisy: list[np.ndarray],
                         base_seed: int) -> list[np.ndarray]:
    """A trained model's outputs on test images (their ``noisy`` inputs), as the run makes them: a model of
    volumes denoises the whole noisy volume of each slice once (``test_volume``) and gives its planes."""
    if not trained.volumetric:
        return [trained.denoise(x) for x in noisy]
    volumes: dict[str, np.ndarray] = {}
    for item in items:
        if str(item.path) not in volumes:
            volumes[str(item.path)] = trained.denoise(test_volume(ts, item, base_seed)[1])
    return [volumes[str(item.path)][item.z] for item in items]


def _keep_snapshot(folder: Path, method: str, index: int, snap: dict) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in snap["state"].items()}
    meta = {"step": str(snap["step"]), "seconds": repr(snap["seconds"])}
    atomic_write(folder / f"{method}-{index}.safetensors", lambda tmp: save_file(tensors, tmp, metadata=meta))


def _kept_snapshots(folder: Path | None, method: str) -> list[dict]:
    """The snapshots an interrupted training of ``method`` saved in ``folder``, in order."""
    from safetensors import safe_open

    states = []
    while folder is not None and (path := folder / f"{method}-{len(states)}.safetensors").is_file():
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            states.append({"step": int(meta["step"]), "seconds": float(meta["seconds"]),
                           "state": {k: f.get_tensor(k) for k in f.keys()}})
    return states
