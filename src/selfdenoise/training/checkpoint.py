"""Training checkpoints: weights and the state of every optimiser in one safetensors file with JSON
metadata, written atomically; read back without unpickling."""
from __future__ import annotations

import json
import os
from dataclasses import asdict

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from ..core.io import atomic_write
from ..core.tensorfile import read_checked
from ..methods.contract import DatasetMethod
from .config import TrainConfig

CHECKPOINT_FORMAT = "selfdenoise-checkpoint/1"


def previous_checkpoint(path: str | os.PathLike) -> str:
    """Where the checkpoint before the last one is kept."""
    return str(path) + ".previous"


def _optimizer_key(name: str) -> tuple[str, str]:
    """Tensor-name prefix and metadata-key suffix of one optimiser ("" is the single-optimiser case)."""
    return ("optim", "") if name == "" else (f"optim:{name}", f":{name}")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, opt: torch.optim.Optimizer | dict, *, step: int,
                    elapsed: float, method: DatasetMethod, channels: int, config: TrainConfig,
                    keep_previous: bool = False, average: nn.Module | None = None) -> None:
    """Weights + the state of every optimiser (one, or a dict name -> optimiser for methods with
    parameter groups) as safetensors with JSON metadata, written atomically in one file (no pickle).
    ``keep_previous``: the checkpoint it replaces moves to ``PATH.previous`` once the new one is complete.
    ``average``: the moving average of the weights (``TrainConfig.ema``), kept beside them."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if average is not None:
        tensors.update({f"average.{k}": v.detach().cpu().contiguous() for k, v in average.state_dict().items()})
    optims = opt if isinstance(opt, dict) else {"": opt}
    meta = {"format": CHECKPOINT_FORMAT, "step": str(step), "elapsed": repr(float(elapsed)),
            "method": method.name, "method_config": json.dumps(method.config()), "channels": str(channels),
            "train_config": json.dumps(asdict(config)), "optimizers": json.dumps(list(optims))}
    for name, o in optims.items():
        key, suffix = _optimizer_key(name)
        sd = o.state_dict()
        scalars: dict[str, dict] = {}
        for i, st in sd["state"].items():
            for k, v in st.items():
                if isinstance(v, Tensor):
                    tensors[f"{key}.{i}.{k}"] = v.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(i), {})[k] = v
        meta[f"optim_groups{suffix}"] = json.dumps(sd["param_groups"])
        meta[f"optim_scalars{suffix}"] = json.dumps(scalars)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta),
                 previous=previous_checkpoint(path) if keep_previous else None)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint (never unpickles): metadata decoded, tensors split by owner."""
    meta, tensors = read_checked(path, CHECKPOINT_FORMAT, "checkpoint", lambda f: {k: f.get_tensor(k) for k in f.keys()})
    cfg = json.loads(meta["train_config"])
    cfg["betas"] = tuple(cfg["betas"])
    optims = {}
    for name in json.loads(meta.get("optimizers", '[""]')):
        key, suffix = _optimizer_key(name)
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith(key + "."):
                i, field_name = k[len(key) + 1:].split(".", 1)
                state.setdefault(int(i), {})[field_name] = v
        for i, sc in json.loads(meta[f"optim_scalars{suffix}"]).items():
            state.setdefault(int(i), {}).update(sc)
        optims[name] = {"state": state, "param_groups": json.loads(meta[f"optim_groups{suffix}"])}
    return {"step": int(meta["step"]), "elapsed": float(meta["elapsed"]), "method": meta["method"],
            "method_config": json.loads(meta["method_config"]), "channels": int(meta["channels"]),
            "config": TrainConfig(**cfg),
            "model": {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
            "average": {k[8:]: v for k, v in tensors.items() if k.startswith("average.")},
            "optims": optims}
