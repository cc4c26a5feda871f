"""The generic training loop of the dataset methods. It knows no method: it calls only the hooks of
``methods.contract.DatasetMethod`` (``data_needs``, ``build_model``, ``param_groups``, ``training_step``,
``after_step``, ``denoise`` for validation).

One run has three phases: ``_set_up`` (device, process group, network, optimisers, resume, log),
``_step`` (one optimisation step of every parameter group) and ``_record`` (progress, log row,
validation, periodic checkpoint). A method with several parameter groups (a GAN's generator and
critic) gets one optimiser per group, each stepped on its own loss; any method may end training early
by raising ``StopTraining(reason)``: the model is kept and the reason recorded.
"""
from __future__ import annotations

import os
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.flop_counter import FlopCounterMode

from ..core.errors import InputError, TrainingDiverged
from ..core.metrics import psnr, quantize_uint8
from ..core.progress import tqdm
from ..methods.base import to_channels_last
from ..methods.contract import Batch, DataNeeds, DatasetMethod, StopTraining
from .checkpoint import read_checkpoint, save_checkpoint
from .config import TrainConfig, TrainResult
from .data import TrainingSet
from .distributed import agree_on_stop, average_gradients, process_group, shared_elapsed
from .log import TrainingLog
from .schedule import lr_factor


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    return torch.device(device)


@dataclass
class _Run:
    """Everything one training run carries from step to step."""

    method: DatasetMethod
    data: TrainingSet
    config: TrainConfig
    needs: DataNeeds
    rank: int
    world: int
    dev: torch.device
    model: nn.Module  # the network itself (saved, validated)
    net: nn.Module  # what the step runs: the model, or its DistributedDataParallel wrapper
    groups: dict[str, dict]
    opts: dict[str, torch.optim.Optimizer]
    start_step: int
    result: TrainResult
    log: TrainingLog | None = None
    average: AveragedModel | None = None  # the moving average of the weights (``config.ema``)
    bar: tqdm | None = None
    t0: float = 0.0
    saved_at: float = 0.0  # when the last checkpoint was written (perf_counter)
    step: int = 0
    compute_s: float = 0.0  # optimisation time after the first step (for GFLOP/s)
    window: dict[str, float] = field(default_factory=dict)  # losses summed since the last log row
    n_window: int = 0
    t_window: float = 0.0

    @property
    def limit(self) -> float | None:
        return self.config.minutes * 60.0 if self.config.minutes is not None else None

    def fraction(self, elapsed: float) -> float:
        """How far training is, 0..1, by steps and by time (whichever is further)."""
        f = self.step / self.config.steps if self.config.steps else 0.0
        return max(f, elapsed / self.limit) if self.limit else f

    @property
    def lr(self) -> float:
        """The learning rate now: the first (or only) optimiser's."""
        return next(iter(self.opts.values())).param_groups[0]["lr"]

    @property
    def current(self) -> nn.Module:
        """The network as training would return it now: the moving average of the weights when kept."""
        return self.average.module if self.average is not None else self.model

    def saved_optimizers(self):
        """One optimiser as itself, several as a dict by group name (the checkpoint's two forms)."""
        return self.opts if len(self.opts) > 1 else next(iter(self.opts.values()))

    def save(self, path: str | os.PathLike) -> None:
        """Write the checkpoint atomically; the one before it is kept as ``PATH.previous``."""
        save_checkpoint(path, self.model, self.saved_optimizers(), step=self.step,
                        elapsed=time.perf_counter() - self.t0, method=self.method, channels=self.data.channels,
                        config=self.config, keep_previous=True, average=self.average)
        self.saved_at = time.perf_counter()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.log is not None:
            self.log.close()


def train(
    method: DatasetMethod,
    data: TrainingSet,
    config: TrainConfig,
    *,
    val: list[tuple[Tensor, Tensor]] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    log: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool = False,
    on_step: Callable[[int, dict], None] | None = None,  # (step, {loss..., model, seconds})
    init: dict[str, Tensor] | None = None,
) -> TrainResult:
    """Train ``method``'s network on ``data`` (a ``training.data.TrainingSet``).

    Adam/AdamW, the schedule of ``config``, gradient clipping, bf16 autocast on CUDA, validation PSNR
    on ``val`` = [(noisy, clean), ...] (1, C, H, W) tensors, a CSV log, atomic checkpoints (all
    optimisers in one file) every ``config.checkpoint_every`` steps and on Ctrl-C (then
    ``KeyboardInterrupt`` is raised again), exact ``resume``, an exponential moving average of the weights
    returned in their place (``config.ema``, checkpointed beside them), early stop on ``StopTraining``
    (``result.stopped`` holds the reason); ``init``: weights the network starts from (not when resuming). Under ``torchrun`` it runs DistributedDataParallel (gloo on
    CPU, NCCL on CUDA; methods with several parameter groups average their gradients by all-reduce
    instead): each process takes its slice of the global batch, only rank 0 writes.
    """
    run = _set_up(method, data, config, resume=resume, log=log, device=device, progress=progress, init=init)
    try:
        while (out := _step(run)) is not None:
            _record(run, out, val=val, checkpoint=checkpoint, on_step=on_step)
    except KeyboardInterrupt:
        run.result.interrupted = True
        if checkpoint is not None and run.rank == 0:
            run.save(checkpoint)
        raise
    finally:
        run.close()
    return _finish(run, val)


# ------------------------------------------------------------------------------------- set-up
def _set_up(method: DatasetMethod, data: TrainingSet, config: TrainConfig, *, resume, log, device: str,
            progress: bool, init: dict[str, Tensor] | None = None) -> _Run:
    """Check the data against the method's needs, start the process group, build the network and its
    optimisers (from a checkpoint when resuming), open the log and the progress bar."""
    config.check()
    rank, world = process_group()
    dev = pick_device(device)
    if world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if config.batch % world:
        raise InputError(f"batch {config.batch} does not split over {world} processes")
    needs = method.data_needs()
    data.check(config.crop, needs, method.name)
    state = _resumed_state(resume, method, data.channels) if resume is not None else None
    if state is not None:
        config = state["config"]
    torch.manual_seed(config.seed)
    model = method.build_model(data.channels)
    if state is not None or init is not None:
        model.load_state_dict(state["model"] if state is not None else init)
    model = to_channels_last(model.to(dev))
    groups = _parameter_groups(method, model, config)
    net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None) \
        if world > 1 and len(groups) == 1 else model
    net.multiple = model.multiple  # the contract's network attribute, also on the wrapper training_step gets
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
    start, elapsed0 = (state["step"], state["elapsed"]) if state is not None else (0, 0.0)
    run = _Run(method, data, config, needs, rank, world, dev, model, net, groups, opts, start,
               TrainResult(model=model, steps=start, seconds=elapsed0), step=start)
    if config.ema:
        run.average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
        if state is not None and state["average"]:
            run.average.load_state_dict(state["average"])
    if rank == 0 and log is not None:
        run.log = TrainingLog(log, resume=state is not None)
    if progress and rank == 0:
        run.bar = tqdm(total=config.steps, initial=start, desc=f"train {method.name}", unit="step")
    run.t0 = time.perf_counter() - elapsed0
    run.saved_at = time.perf_counter()
    run.t_window = time.perf_counter()
    net.train()
    return run


def _resumed_state(resume: str | os.PathLike, method: DatasetMethod, channels: int) -> dict:
    state = read_checkpoint(resume)
    if state["method"] != method.name or state["channels"] != channels:
        raise InputError(f"{resume}: checkpoint of '{state['method']}' on {state['channels']}-channel data; "
                         f"cannot resume '{method.name}' on {channels}-channel data")
    return state


def _parameter_groups(method: DatasetMethod, model: nn.Module, config: TrainConfig) -> dict[str, dict]:
    """{name: {"params", "lr", "betas", "loss"}} from the method's ``param_groups(model)``: a group is an
    iterable of parameters or a dict with ``params`` and optionally ``lr_scale`` (times ``config.lr``),
    ``betas`` and ``loss`` (the key of its loss in ``training_step``'s output; default ``loss`` for the
    first group, ``<name>_loss`` for the others)."""
    groups: dict[str, dict] = {}
    for k, (name, spec) in enumerate(method.param_groups(model).items()):
        spec = dict(spec) if isinstance(spec, dict) else {"params": spec}
        groups[name] = {"params": [p for p in spec["params"] if p.requires_grad],
                        "lr": config.lr * float(spec.get("lr_scale", 1.0)),
                        "betas": tuple(spec.get("betas", config.betas)),
                        "loss": spec.get("loss", "loss" if k == 0 else f"{name}_loss")}
    seen = [id(p) for g in groups.values() for p in g["params"]]
    if len(seen) != len(set(seen)):
        raise ValueError(f"{method.name}: a parameter belongs to more than one group")
    return groups


# --------------------------------------------------------------------------------------- step
def _step(run: _Run) -> dict[str, Tensor] | None:
    """One optimisation step; None when training is over (steps, time, or the method stopped it)."""
    config = run.config
    elapsed = time.perf_counter() - run.t0
    if run.world > 1 and run.limit is not None:  # every rank must stop at the same step
        elapsed = shared_elapsed(elapsed, run.dev)
    frac = run.fraction(elapsed)
    if config.steps is not None and run.step >= config.steps or run.limit is not None and elapsed >= run.limit:
        return None
    step = run.step
    total = config.steps if config.steps and not run.limit else max(step + 1, round(step / frac) if frac > 0 else step + 1)
    warm = min(1.0, (frac + 1e-12) / config.warmup) if config.warmup > 0 else 1.0
    for name, o in run.opts.items():
        for g in o.param_groups:
            g["lr"] = run.groups[name]["lr"] * warm * lr_factor(config.schedule, frac)
    batch = _to_device(run.data.sample(step, config.batch // run.world, config.crop, run.needs, seed=config.seed,
                                       rank=run.rank), run.dev)
    ts = time.perf_counter()
    counter = FlopCounterMode(display=False) if run.result.flops_per_step is None else None
    with counter if counter is not None else nullcontext():
        out = _losses_backward(run, batch, step, total)
    if out is None:
        return None
    if counter is not None:
        run.result.flops_per_step = float(counter.get_total_flops()) * run.world
    if run.world > 1 and len(run.groups) > 1:
        average_gradients([p for g in run.groups.values() for p in g["params"]], run.world)
    for name, o in run.opts.items():
        if config.clip:
            torch.nn.utils.clip_grad_norm_(run.groups[name]["params"], config.clip)
        o.step()
    with torch.no_grad():
        run.method.after_step(run.model, step)
    if run.average is not None:
        run.average.update_parameters(run.model)
    if step > run.start_step:  # the first step pays for allocation and FLOP counting
        run.compute_s += time.perf_counter() - ts
    run.step = run.result.steps = step + 1
    return out


def _losses_backward(run: _Run, batch: Batch, step: int, total: int) -> dict[str, Tensor] | None:
    """The method's losses and their gradients, each group's loss reaching only its own parameters
    (the critic gets nothing from the generator's loss); None when the method stops training."""
    stop = None
    amp = run.config.amp and run.dev.type == "cuda"
    try:
        with torch.autocast(run.dev.type, dtype=torch.bfloat16, enabled=amp):
            out = run.method.training_step(batch, run.net, step, total)
    except StopTraining as e:
        stop = e.reason or "requested by the method"
    if run.world > 1:  # every rank must stop at the same step
        stop = agree_on_stop(stop, run.dev)
    if stop is not None:
        run.result.stopped = stop
        if run.rank == 0:
            warnings.warn(f"training stopped at step {step}: {stop}", stacklevel=4)
        return None
    losses = [out[g["loss"]] for g in run.groups.values()]
    for name, value in zip(run.groups, losses):
        if not torch.isfinite(value):
            raise TrainingDiverged(f"{run.method.name}: {name + ' ' if name else ''}loss is {float(value.detach())} at step "
                                   f"{step} (learning rate {run.lr:.3g}); lower the learning rate (-p lr=...)")
    for o in run.opts.values():
        o.zero_grad(set_to_none=True)
    if len(run.groups) == 1:
        out["loss"].backward()
    else:
        for k, (value, g) in enumerate(zip(losses, run.groups.values())):
            torch.autograd.backward(value, inputs=g["params"], retain_graph=k < len(losses) - 1)
    return out


def _to_device(batch: Batch, dev: torch.device) -> Batch:
    if dev.type == "cpu":
        return batch
    move = (lambda t: None if t is None else t.to(dev, non_blocking=True))
    extra = {k: move(v) if isinstance(v, Tensor) else v for k, v in batch.extra.items()}
    return Batch(noisy=move(batch.noisy), target=move(batch.target), mask=move(batch.mask), extra=extra)


# ------------------------------------------------------------------------- log and checkpoint
def _record(run: _Run, out: dict[str, Tensor], *, val, checkpoint, on_step) -> None:
    """After a step: progress bar, the log row (with validation when due), the periodic checkpoint."""
    config, step = run.config, run.step
    for k, v in out.items():
        run.window[k] = run.window.get(k, 0.0) + float(v.detach())
    run.n_window += 1
    lr = run.lr
    if run.bar is not None:
        run.bar.update(1)
        if step % 5 == 0:
            run.bar.set_postfix(loss=f"{float(out['loss'].detach()):.4g}", lr=f"{lr:.2g}")
    do_val = val and config.val_every and step % config.val_every == 0
    last = config.steps is not None and step >= config.steps
    if run.rank == 0 and (step % config.log_every == 0 or do_val or last):
        now = time.perf_counter()
        row = {"step": step, "seconds": round(now - run.t0, 3), "lr": lr,
               **{k: v / run.n_window for k, v in run.window.items()},
               "steps_per_s": run.n_window / max(1e-9, now - run.t_window)}
        if do_val:
            row["val_psnr"] = run.result.val_psnr = validate(run.method, run.current, val)
            run.net.train()
        run.result.history.append(row)
        if run.log is not None:
            run.log.write(row)
        run.window, run.n_window, run.t_window = {}, 0, time.perf_counter()
    if on_step is not None:
        on_step(step, {**out, "model": run.current, "seconds": time.perf_counter() - run.t0})
    by_steps = config.checkpoint_every and step % config.checkpoint_every == 0
    by_time = config.checkpoint_minutes and time.perf_counter() - run.saved_at >= 60 * config.checkpoint_minutes
    if checkpoint is not None and run.rank == 0 and (by_steps or by_time and not last):
        run.save(checkpoint)


def _finish(run: _Run, val) -> TrainResult:
    result = run.result
    result.seconds = time.perf_counter() - run.t0
    if run.average is not None:  # the averaged weights are the result
        run.model.load_state_dict(run.average.module.state_dict())
    done = run.step - run.start_step
    if result.flops_per_step and done > 1 and run.compute_s > 0:
        result.gflops_per_s = result.flops_per_step * (done - 1) / run.compute_s / 1e9 / run.world
    if val and run.rank == 0:
        result.val_psnr = validate(run.method, run.model, val)
    run.model.eval()
    return result


@torch.no_grad()
def validate(method: DatasetMethod, model: nn.Module, val: list[tuple[Tensor, Tensor]]) -> float:
    """Mean PSNR (uint8-quantised, as the benchmarks) of the method's inference on ``val`` pairs (a volume's
    over all its voxels)."""
    dev = next(model.parameters()).device
    as_uint8 = lambda t: quantize_uint8(t[0].movedim(0, -1).flatten(0, -3).float().cpu().numpy())
    scores = [psnr(as_uint8(clean), as_uint8(method.denoise(model, noisy.to(dev)))) for noisy, clean in val]
    return float(sum(scores) / len(scores))
