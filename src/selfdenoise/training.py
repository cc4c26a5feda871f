"""Generic training loops. They know nothing about any particular method: a method supplies the
network (``build_model``), the batches (``sample_batch``) and the loss (``training_step``).

Adversarial methods declare ``param_groups(model) -> {"generator": ..., "critic": ...}``: one
optimiser per group, each stepped on its own loss (``out["loss"]`` for the first group,
``out["<name>_loss"]`` for the others). Any method may end training early by raising
``StopTraining(reason)`` from ``training_step``; the model is kept and the reason recorded."""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .errors import InputError
from .io import atomic_write
from .methods.base import Batch, to_channels_last


def fit_single_image(
    method: Any,
    noisy: Tensor,
    *,
    steps: int | None = None,
    seconds: float | None = None,
    seed: int = 0,
    progress: bool = False,
    lr: float = 1e-3,
    model: nn.Module | None = None,
) -> nn.Module:
    """Fit ``method``'s network to one noisy image ``noisy`` (1, C, H, W) with its own
    self-supervised loss and return the (trained, eval-mode) model.

    The method must provide ``build_model(channels)``, ``sample_batch(noisy, generator) -> Batch``
    and ``training_step(batch, model, step, total) -> {"loss": ...}``. It may provide
    ``lr_at(step, total, lr) -> float`` for a learning-rate schedule (default: constant).
    Training stops after ``steps`` steps or ``seconds`` of wall time, whichever comes first (at least
    one of them must be given; with ``seconds`` alone ``total`` is unknown to the step hooks and is
    passed as 0). Results are deterministic for a given seed when stopping on ``steps``.
    """
    if steps is None and seconds is None:
        raise ValueError("give steps, seconds or both")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if model is None:
        model = method.build_model(noisy.shape[1])
    model = to_channels_last(model)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    total = int(steps) if steps is not None else 0
    if not params or total == 0 and steps is not None:
        return model.eval()
    opt = torch.optim.Adam(params, lr=lr)
    lr_at = getattr(method, "lr_at", None)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total or None, desc=f"{getattr(method, 'name', 'fit')}", unit="step", leave=False)
    t0 = time.perf_counter()
    step = 0
    try:
        while True:
            if steps is not None and step >= steps:
                break
            if seconds is not None and time.perf_counter() - t0 >= seconds:
                break
            if lr_at is not None:
                for g in opt.param_groups:
                    g["lr"] = lr_at(step, total, lr)
            batch = method.sample_batch(noisy, gen)
            out = method.training_step(batch, model, step, total)
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.3g}")
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return model


# ------------------------------------------------------------------------ training on a data set
class StopTraining(Exception):
    """Raised by a method's ``training_step`` to end training now, e.g. on a detected collapse. The
    step that raised it makes no update; the model trained so far is returned and saved."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


CHECKPOINT_FORMAT = "selfdenoise-checkpoint/1"
SCHEDULES = "constant | cosine | step:EVERY:FACTOR | multistep:F1,F2,...:FACTOR | rampdown:FRACTION"


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
    seed: int = 0
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    val_every: int = 0  # steps between validations (0: only at the end)
    checkpoint_every: int = 0  # steps between checkpoints (0: only when interrupted)
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
        lr_factor(self.schedule, 0.0)


def lr_factor(schedule: str, frac: float) -> float:
    """Learning-rate multiplier at fraction ``frac`` (0..1) of training for a schedule string."""
    kind, _, arg = schedule.partition(":")
    try:
        if kind == "constant":
            return 1.0
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))
        if kind == "step":
            every, factor = (float(a) for a in arg.split(":"))
            return factor ** math.floor(frac / every + 1e-9)
        if kind == "multistep":
            marks, factor = arg.split(":")
            return float(factor) ** sum(frac >= float(m) for m in marks.split(","))
        if kind == "rampdown":
            p = float(arg)
            t = (frac - (1.0 - p)) / p
            return 1.0 if t <= 0 else (0.5 + math.cos(math.pi * min(1.0, t)) / 2.0) ** 2
    except (ValueError, ZeroDivisionError):
        pass
    raise InputError(f"bad schedule '{schedule}' (use {SCHEDULES})")


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


def _dist() -> tuple[int, int]:
    """(rank, world size); initialises the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("SELFDENOISE_DEVICE") != "cpu" else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    return torch.device(device)


def _optimizer_key(name: str) -> tuple[str, str]:
    """Tensor-name prefix and metadata-key suffix of one optimiser ("" is the single-optimiser case)."""
    return ("optim", "") if name == "" else (f"optim:{name}", f":{name}")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, opt: torch.optim.Optimizer | dict, *, step: int,
                    elapsed: float, method: Any, channels: int, config: TrainConfig) -> None:
    """Weights + the state of every optimiser (one, or a dict name -> optimiser for methods with
    parameter groups) as safetensors with JSON metadata, written atomically in one file (no pickle)."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
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
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint (never unpickles): metadata decoded, tensors split by owner."""
    from .modelfile import read_checked

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
            "optims": optims}


def train(
    method: Any,
    data: Any,
    config: TrainConfig,
    *,
    val: list[tuple[Tensor, Tensor]] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    log: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool = False,
    on_step: Callable[[int, dict], None] | None = None,  # (step, {loss..., model, seconds})
) -> TrainResult:
    """Train ``method``'s network on ``data`` (a ``selfdenoise.data.TrainingSet``).

    Generic: it knows only the method's ``build_model``, ``training_step`` and ``denoise``, ``pairs``
    and the optional ``needs_clean`` (batches carry unpaired clean crops in ``extra["clean"]``),
    ``param_groups`` (one optimiser per group, see the module docstring), ``after_step(model, step)``
    (called after the optimiser steps, e.g. to clip a critic's weights). Adam/AdamW, the schedule of
    ``config``, gradient clipping, bf16 autocast on CUDA, validation PSNR on ``val`` = [(noisy, clean),
    ...] (1, C, H, W) tensors, a CSV log, atomic checkpoints (all optimisers in one file) every
    ``config.checkpoint_every`` steps and on Ctrl-C (then ``KeyboardInterrupt`` is raised again),
    exact ``resume``, early stop on ``StopTraining`` (``result.stopped`` holds the reason). Under
    ``torchrun`` it runs DistributedDataParallel (gloo on CPU, NCCL on CUDA; methods with several
    parameter groups average their gradients by all-reduce instead): each process takes its slice of
    the global batch, only rank 0 writes.
    """
    config.check()
    rank, world = _dist()
    dev = pick_device(device)
    if world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if config.batch % world:
        raise InputError(f"batch {config.batch} does not split over {world} processes")
    needs_clean = bool(getattr(method, "needs_clean", False))
    if needs_clean and getattr(data, "clean", None) is None:
        raise InputError(f"method '{method.name}' learns from unpaired clean images too: give a folder of clean "
                         "images of other scenes (--clean DIR, or clean=... in the API)")
    data.check(crop=config.crop, pairs=method.pairs, targets=getattr(method, "target_frames", 1))
    channels = data.channels
    start_step, elapsed0 = 0, 0.0
    state = None
    if resume is not None:
        state = read_checkpoint(resume)
        if state["method"] != method.name or state["channels"] != channels:
            raise InputError(f"{resume}: checkpoint of '{state['method']}' on {state['channels']}-channel data; "
                             f"cannot resume '{method.name}' on {channels}-channel data")
        config = state["config"]
        start_step, elapsed0 = state["step"], state["elapsed"]

    torch.manual_seed(config.seed)
    model = method.build_model(channels)
    if state is not None:
        model.load_state_dict(state["model"])
    model = to_channels_last(model.to(dev))
    net = model
    groups = _parameter_groups(method, model, config)
    if world > 1 and len(groups) == 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    opt_cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # foreach: one fused update for all tensors (the per-tensor loop cost ~4 ms a step on 2 CPU cores)
    opts = {name: opt_cls(g["params"], lr=g["lr"], betas=g["betas"], weight_decay=config.weight_decay, foreach=True)
            for name, g in groups.items()}
    if state is not None:
        if sorted(state["optims"]) != sorted(opts):
            raise InputError(f"{resume}: checkpoint holds optimiser(s) {sorted(state['optims'])}, "
                             f"the method has {sorted(opts)}")
        for name, o in opts.items():
            o.load_state_dict(state["optims"][name])
    opt = next(iter(opts.values()))  # the first (or only) optimiser: its learning rate is logged
    saved_opts = opts if len(opts) > 1 else opt
    after_step = getattr(method, "after_step", None)
    amp = config.amp and dev.type == "cuda"
    writer = _Log(log, resume=state is not None) if rank == 0 and log is not None else None
    limit = config.minutes * 60.0 if config.minutes is not None else None
    per_rank = config.batch // world

    def fraction(step: int, elapsed: float) -> float:
        f = step / config.steps if config.steps else 0.0
        return max(f, elapsed / limit) if limit else f

    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=start_step, desc=f"train {method.name}", unit="step")
    result = TrainResult(model=model, steps=start_step, seconds=elapsed0)
    t0 = time.perf_counter() - elapsed0
    step = start_step
    window: dict[str, float] = {}
    n_window, t_window = 0, time.perf_counter()
    compute_s = 0.0
    net.train()
    try:
        while True:
            elapsed = time.perf_counter() - t0
            if world > 1 and limit is not None:  # every rank must stop at the same step
                import torch.distributed as dist

                e = torch.tensor([elapsed], dtype=torch.float64, device=dev)
                dist.broadcast(e, 0)
                elapsed = float(e)
            frac = fraction(step, elapsed)
            if config.steps is not None and step >= config.steps or limit is not None and elapsed >= limit:
                break
            total = config.steps if config.steps and not limit else max(step + 1, round(step / frac) if frac > 0 else step + 1)
            warm = min(1.0, (frac + 1e-12) / config.warmup) if config.warmup > 0 else 1.0
            for name, o in opts.items():
                for g in o.param_groups:
                    g["lr"] = groups[name]["lr"] * warm * lr_factor(config.schedule, frac)
            batch = data.sample(step, per_rank, config.crop, seed=config.seed, pairs=method.pairs, rank=rank,
                                world=world, clean=needs_clean, targets=getattr(method, "target_frames", 1),
                                augment=getattr(method, "augment", "dihedral"))
            batch = _to_device(batch, dev)
            ts = time.perf_counter()
            counter = _flop_counter() if result.flops_per_step is None else None
            stop = None
            with counter if counter is not None else nullcontext():
                try:
                    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                        out = method.training_step(batch, net, step, total)
                except StopTraining as e:
                    stop = e.reason or "requested by the method"
                if world > 1:  # every rank must stop at the same step
                    stop = _agree_on_stop(stop, dev)
                if stop is not None:
                    result.stopped = stop
                    if rank == 0:
                        warnings.warn(f"training stopped at step {step}: {stop}", stacklevel=2)
                    break
                loss = out["loss"]
                losses = [out[g["loss"]] for g in groups.values()]
                for name, value in zip(groups, losses):
                    if not torch.isfinite(value):
                        raise FloatingPointError(f"non-finite {name + ' ' if name else ''}loss at step {step}; "
                                                 "lower the learning rate")
                for o in opts.values():
                    o.zero_grad(set_to_none=True)
                if len(groups) == 1:
                    loss.backward()
                else:  # each loss updates only its own group (the critic gets nothing from the generator's loss)
                    for k, (value, g) in enumerate(zip(losses, groups.values())):
                        torch.autograd.backward(value, inputs=g["params"], retain_graph=k < len(losses) - 1)
            if counter is not None:
                result.flops_per_step = float(counter.get_total_flops()) * world
            if world > 1 and len(groups) > 1:
                _average_gradients([p for g in groups.values() for p in g["params"]], world)
            for name, o in opts.items():
                if config.clip:
                    torch.nn.utils.clip_grad_norm_(groups[name]["params"], config.clip)
                o.step()
            if after_step is not None:
                with torch.no_grad():
                    after_step(model, step)
            if step > start_step:  # the first step pays for allocation and FLOP counting
                compute_s += time.perf_counter() - ts
            step += 1
            result.steps = step
            for k, v in out.items():
                window[k] = window.get(k, 0.0) + float(v.detach())
            n_window += 1
            if bar is not None:
                bar.update(1)
                if step % 5 == 0:
                    bar.set_postfix(loss=f"{float(loss.detach()):.4g}", lr=f"{opt.param_groups[0]['lr']:.2g}")
            do_val = val and config.val_every and step % config.val_every == 0
            last = config.steps is not None and step >= config.steps
            if rank == 0 and (step % config.log_every == 0 or do_val or last):
                row = {"step": step, "seconds": round(time.perf_counter() - t0, 3), "lr": opt.param_groups[0]["lr"],
                       **{k: v / n_window for k, v in window.items()},
                       "steps_per_s": n_window / max(1e-9, time.perf_counter() - t_window)}
                if do_val:
                    row["val_psnr"] = result.val_psnr = validate(method, model, val)
                    net.train()
                result.history.append(row)
                if writer is not None:
                    writer.write(row)
                window, n_window, t_window = {}, 0, time.perf_counter()
            if on_step is not None:
                on_step(step, {**out, "model": model, "seconds": time.perf_counter() - t0})
            if checkpoint is not None and rank == 0 and config.checkpoint_every and step % config.checkpoint_every == 0:
                save_checkpoint(checkpoint, model, saved_opts, step=step, elapsed=time.perf_counter() - t0,
                                method=method, channels=channels, config=config)
    except KeyboardInterrupt:
        result.interrupted = True
        if checkpoint is not None and rank == 0:
            save_checkpoint(checkpoint, model, saved_opts, step=step, elapsed=time.perf_counter() - t0,
                            method=method, channels=channels, config=config)
        raise
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    result.seconds = time.perf_counter() - t0
    if result.flops_per_step and step - start_step > 1 and compute_s > 0:
        result.gflops_per_s = result.flops_per_step * (step - start_step - 1) / compute_s / 1e9 / world
    if val and rank == 0:
        result.val_psnr = validate(method, model, val)
    model.eval()
    return result


def _parameter_groups(method: Any, model: nn.Module, config: TrainConfig) -> dict[str, dict]:
    """{name: {"params", "lr", "betas", "loss"}}: one group of all trainable parameters, or the
    method's ``param_groups(model)``. A group is an iterable of parameters or a dict with ``params``
    and optionally ``lr_scale`` (times ``config.lr``), ``betas`` and ``loss`` (the key of its loss in
    ``training_step``'s output; default ``loss`` for the first group, ``<name>_loss`` for the others)."""
    declare = getattr(method, "param_groups", None)
    declared = declare(model) if declare is not None else {"": model.parameters()}
    groups: dict[str, dict] = {}
    for k, (name, spec) in enumerate(declared.items()):
        spec = dict(spec) if isinstance(spec, dict) else {"params": spec}
        groups[name] = {"params": [p for p in spec["params"] if p.requires_grad],
                        "lr": config.lr * float(spec.get("lr_scale", 1.0)),
                        "betas": tuple(spec.get("betas", config.betas)),
                        "loss": spec.get("loss", "loss" if k == 0 else f"{name}_loss")}
    seen = [id(p) for g in groups.values() for p in g["params"]]
    if len(seen) != len(set(seen)):
        raise ValueError(f"{method.name}: a parameter belongs to more than one group")
    return groups


def _agree_on_stop(reason: str | None, dev: torch.device) -> str | None:
    """Under torchrun: stop on every rank when any rank asks to."""
    import torch.distributed as dist

    flag = torch.tensor([0.0 if reason is None else 1.0], device=dev)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return reason if reason is not None or float(flag) == 0 else "stopped on another process"


def _average_gradients(params: list[Tensor], world: int) -> None:
    """Under torchrun, for methods with several optimisers (not wrapped in DDP): average gradients."""
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


@torch.no_grad()
def validate(method: Any, model: nn.Module, val: list[tuple[Tensor, Tensor]]) -> float:
    """Mean PSNR (uint8-quantised, as the benchmarks) of the method's inference on ``val`` pairs."""
    from .metrics import psnr, quantize_uint8

    dev = next(model.parameters()).device
    as_uint8 = lambda t: quantize_uint8(t[0].permute(1, 2, 0).float().cpu().numpy())
    scores = [psnr(as_uint8(clean), as_uint8(method.denoise(model, noisy.to(dev)))) for noisy, clean in val]
    return float(sum(scores) / len(scores))


def _to_device(batch: Batch, dev: torch.device) -> Batch:
    if dev.type == "cpu":
        return batch
    move = (lambda t: None if t is None else t.to(dev, non_blocking=True))
    extra = {k: move(v) if isinstance(v, Tensor) else v for k, v in batch.extra.items()}
    return Batch(noisy=move(batch.noisy), target=move(batch.target), mask=move(batch.mask), extra=extra)


def _flop_counter():
    try:
        from torch.utils.flop_counter import FlopCounterMode

        return FlopCounterMode(display=False)
    except ImportError:  # pragma: no cover - old torch
        return None


class _Log:
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
        if self.fields is None:
            self.fields = list(row) + (["val_psnr"] if "val_psnr" not in row else [])
            with open(self.path, "w") as f:
                f.write(",".join(self.fields) + "\n")
        with open(self.path, "a") as f:
            f.write(",".join(_fmt(row.get(k)) for k in self.fields) + "\n")
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
