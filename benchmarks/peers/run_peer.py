#!/usr/bin/env python3
"""Run one peer self-supervised denoiser on one noisy image, through the peer's own code.

Run by the PEER environment's python (`make peers` creates .peers/venv), never by selfdenoise's:

    .peers/venv/bin/python benchmarks/peers/run_peer.py PEER --input noisy.npy --output out.npy \
        --budget SECONDS --seed N [--input2 second_noisy.npy] [--axes YX|YXC] [--json info.json]

PEER is one of
    careamics-n2v2   CAREamics Noise2Void2 (create_advanced_n2v_config(..., use_n2v2=True), defaults otherwise)
    careamics-n2n    CAREamics Noise2Noise on the pair (--input, --input2); predicts --input
    deepinv-ne2ne    DeepInverse Neighbor2Neighbor loss, UNet(scales=2), Adam, StepLR, dinv.Trainer, as in its
                     example, on random 64x64 crops of the image, 8 a step (--crop 0: the whole image)
    deepinv-r2r      DeepInverse (G)R2R loss with a Gaussian noise model (sigma from deepinv's
                     PatchCovarianceNoiseEstimator, or --sigma), UNet(scales=2, residual=False), likewise

The input is a float array in [0, 1] of shape (H, W) or (H, W, C): a single noisy image. The peer trains on
that image alone (transductive, as a Noise2Void user does on their own data) for --budget seconds of wall
time (it stops before a step that would overrun the budget; set-up and the first step always run), then
denoises it. The output is float32, same shape, clipped to [0, 1]. --json records the peer,
its version, the configuration actually used, epochs/steps and seconds. Bad input: one line on stderr, exit 2.

This script must not import selfdenoise: it measures the peers as a user would run them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PEERS = ("careamics-n2v2", "careamics-n2n", "deepinv-ne2ne", "deepinv-r2r")

# CAREamics' documented quick-start values for the two mandatory arguments (docs "Getting started" and
# "Configuration > Noise2Void": patch_size=[64, 64], batch_size=8); everything else is left at its default.
CAREAMICS_PATCH = 64
CAREAMICS_BATCH = 8
CAREAMICS_VAL_PATCHES = 8  # create_*_config default n_val_patches

# DeepInverse's self-supervised examples (examples/self-supervised-learning/demo_n2n_denoising.py and
# demo_r2r_denoising.py): ArtifactRemoval(UNet(scales=2)), Adam, StepLR at 80 % of the epochs, batch size 1 on CPU.
DEEPINV_EXAMPLE = {
    "deepinv-ne2ne": {"example": "examples/self-supervised-learning/demo_n2n_denoising.py",
                      "unet": {"scales": 2}, "lr": 5e-4, "weight_decay": 1e-8},
    "deepinv-r2r": {"example": "examples/self-supervised-learning/demo_r2r_denoising.py",
                    "unet": {"scales": 2, "residual": False}, "lr": 1e-4, "weight_decay": 1e-4},
}


class InputError(Exception):
    """Bad input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's own code), no usage dump
        print(f"run_peer: error: {message}", file=sys.stderr)
        sys.exit(2)


def parse_args(argv=None) -> argparse.Namespace:
    p = _Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("peer", choices=PEERS)
    p.add_argument("--input", required=True, type=Path, help="noisy image, .npy float in [0,1], (H,W) or (H,W,C)")
    p.add_argument("--input2", type=Path, help="second noisy shot of the same scene (careamics-n2n only)")
    p.add_argument("--output", required=True, type=Path, help="denoised image, .npy float32")
    p.add_argument("--budget", required=True, type=float, help="training wall-time budget in seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--axes", choices=("YX", "YXC"), help="default: YX for 2-D input, YXC for 3-D")
    p.add_argument("--json", type=Path, help="write run information here")
    p.add_argument("--max-epochs", type=int, default=None,
                   help="also stop after this many epochs (default: the budget alone decides)")
    p.add_argument("--sigma", type=float, default=None,
                   help="deepinv-r2r: Gaussian noise sigma in [0,1] units (default: deepinv's "
                        "PatchCovarianceNoiseEstimator on the input)")
    p.add_argument("--crop", type=int, default=64,
                   help="deepinv-*: train on random crops this size (default 64; 0 = the whole image, batch 1)")
    p.add_argument("--batch", type=int, default=8, help="deepinv-*: crops a step (default 8)")
    return p.parse_args(argv)


def load_image(path: Path, axes: str | None, what: str = "--input") -> tuple[np.ndarray, str]:
    if not path.is_file():
        raise InputError(f"{what}: no such file: {path}")
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise InputError(f"{what}: {path} is not a NumPy .npy file")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
        msg = " ".join(str(e).split())
        raise InputError(f"{what}: cannot read {path} as .npy ({type(e).__name__}: {msg})") from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{what}: expected a float array in [0,1], got dtype {getattr(arr, 'dtype', type(arr))}")
    if arr.ndim not in (2, 3):
        raise InputError(f"{what}: expected shape (H,W) or (H,W,C), got {arr.shape}")
    axes = axes or ("YX" if arr.ndim == 2 else "YXC")
    if len(axes) != arr.ndim:
        raise InputError(f"{what}: axes {axes} do not match shape {arr.shape}")
    if arr.ndim == 3 and not 1 <= arr.shape[2] <= 4:
        raise InputError(f"{what}: expected 1 to 4 channels last, got shape {arr.shape}")
    if min(arr.shape[:2]) < 8:
        raise InputError(f"{what}: image too small, {arr.shape[:2]} (need at least 8x8)")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{what}: contains NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    # [0, 1] up to noise, as selfdenoise's own API takes it: an image with synthetic Gaussian noise is not
    # clipped (every method of a benchmark gets the same array), so it reaches past both ends
    if lo < -0.5 or hi > 1.5:
        raise InputError(f"{what}: values must lie in [0,1] up to noise (-0.5 to 1.5), got [{lo:.4g}, {hi:.4g}]")
    if hi - lo <= 0:
        raise InputError(f"{what}: constant image")
    return np.ascontiguousarray(arr, dtype=np.float32), axes


def seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for p in ("torch", "torchvision", "careamics", "deepinv", "lightning", "numpy"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------------------------- CAREamics
def run_careamics(peer: str, x: np.ndarray, axes: str, x2: np.ndarray | None, budget: float, seed: int,
                  max_epochs: int | None) -> tuple[np.ndarray, dict]:
    h, w = x.shape[:2]
    if h < CAREAMICS_PATCH or w < CAREAMICS_PATCH:
        raise InputError(f"--input: CAREamics' {CAREAMICS_PATCH}x{CAREAMICS_PATCH} patches need an image at "
                         f"least that large, got {h}x{w}")
    if (h // CAREAMICS_PATCH) * (w // CAREAMICS_PATCH) <= CAREAMICS_VAL_PATCHES:
        raise InputError(f"--input: {h}x{w} gives too few {CAREAMICS_PATCH}x{CAREAMICS_PATCH} patches for "
                         f"CAREamics' {CAREAMICS_VAL_PATCHES} validation patches plus training")
    import logging

    import torch
    from careamics import CAREamist
    from careamics.config import create_advanced_n2n_config, create_advanced_n2v_config
    from lightning.pytorch import Callback

    for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "careamics"):
        logging.getLogger(name).setLevel(logging.ERROR)

    n_channels = x.shape[2] if "C" in axes else None
    # A cap on epochs only; the wall-time budget (callback below) is what stops training by default.
    num_epochs = max_epochs if max_epochs else 1_000_000
    # create_n2v_config / create_n2n_config forward to the create_advanced_* factories with their defaults;
    # the advanced ones are called directly only to pass the seed (the simple ones draw a random seed).
    common = {"experiment_name": f"peer_{peer.replace('-', '_')}", "data_type": "array", "axes": axes,
              "patch_size": [CAREAMICS_PATCH, CAREAMICS_PATCH], "batch_size": CAREAMICS_BATCH,
              "num_epochs": num_epochs, "seed": seed + 1}  # CAREamics requires seed > 0; --seed may be 0
    if peer == "careamics-n2v2":
        config = create_advanced_n2v_config(**common, use_n2v2=True, n_channels=n_channels)
    else:
        config = create_advanced_n2n_config(**common, n_channels_in=n_channels, n_channels_out=n_channels)

    class WallTimeBudget(Callback):
        """Stop before a batch that would overrun the budget, as Lightning's own Timer callback does
        (trainer.should_stop = True): Lightning then validates once more, so that the ReduceLROnPlateau
        scheduler finds its val_loss at the epoch's end. (CAREamist.stop_training() also skips that
        validation, which fails with "ReduceLROnPlateau conditioned on metric val_loss which is not available"
        when the budget ends inside the first epoch.)"""

        def __init__(self, start: float):
            self.start = self.last = start
            self.batches, self.batch_seconds = 0, None
            self.val_start, self.val_seconds = None, 0.0
            self.stopped_by_budget = False

        def on_validation_start(self, trainer, pl_module):
            self.val_start = time.perf_counter()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if self.val_start is not None:  # validation + checkpointing + epoch change since on_validation_start
                self.val_seconds = time.perf_counter() - self.val_start
                self.val_start = None
                self.last = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            now = time.perf_counter()
            dt, self.last = now - self.last, now
            self.batches += 1
            if self.batches >= 2:  # the first batch carries the warm-up; then a running estimate
                self.batch_seconds = dt if self.batch_seconds is None else 0.8 * self.batch_seconds + 0.2 * dt
            # stop if one more batch, then the closing validation and checkpoint, would overrun the budget
            if now - self.start + (self.batch_seconds or dt) + self.val_seconds > budget:
                self.stopped_by_budget = True
                trainer.should_stop = True

    with tempfile.TemporaryDirectory(prefix="careamics-peer-") as work_dir:
        t0 = time.perf_counter()
        timer = WallTimeBudget(t0)
        careamist = CAREamist(config, work_dir=work_dir, callbacks=[timer], enable_progress_bar=False)
        if peer == "careamics-n2v2":
            careamist.train(train_data=x)
        else:
            careamist.train(train_data=x, train_data_target=x2)
        train_seconds = time.perf_counter() - t0
        steps, epochs = int(careamist.trainer.global_step), int(careamist.trainer.current_epoch)
        ckpts = sorted(p.name for p in Path(work_dir).rglob("*.ckpt"))
        last = list(Path(work_dir).rglob("*_last.ckpt"))
        last_step = (int(torch.load(last[0], map_location="cpu", weights_only=False).get("global_step", -1))
                     if last else None)
        # CAREamics predicts from its "last" checkpoint by default, but Lightning refreshes "last" only when a
        # periodic checkpoint is saved (every 10 epochs here): after a stop at epoch 18 it holds epoch 10. A
        # user running the default 30 epochs gets the final weights, so we save them (Lightning's
        # Trainer.save_checkpoint, which runs CAREamics' checkpoint callbacks) and predict from that file.
        final = Path(work_dir) / "final_weights.ckpt"
        careamist.trainer.save_checkpoint(final)
        t1 = time.perf_counter()
        preds, _ = careamist.predict(pred_data=x, checkpoint=final)
        predict_seconds = time.perf_counter() - t1

    out = np.asarray(preds[0], dtype=np.float32)
    out = np.squeeze(out)
    if out.ndim == 3 and x.ndim == 3 and out.shape != x.shape:  # CYX -> YXC
        out = np.moveaxis(out, 0, -1)
    out = out.reshape(x.shape)
    factory = "create_advanced_n2v_config" if peer == "careamics-n2v2" else "create_advanced_n2n_config"
    info = {
        "tool": "careamics",
        "method": "Noise2Void2 (N2V2)" if peer == "careamics-n2v2" else "Noise2Noise",
        "api": f"careamics.config.{factory}(...{', use_n2v2=True' if peer == 'careamics-n2v2' else ''}); "
               "CAREamist(config).train(...); CAREamist.predict(pred_data=input, checkpoint=final weights)",
        "arguments": dict(common) | (
            {"use_n2v2": True, "n_channels": n_channels} if peer == "careamics-n2v2"
            else {"n_channels_in": n_channels, "n_channels_out": n_channels}),
        "stop": ("wall-time budget (a Lightning callback setting trainer.should_stop, as Lightning's Timer)"
                 if timer.stopped_by_budget else "num_epochs reached"),
        "config": json.loads(config.model_dump_json()),
        "epochs_completed": epochs,
        "steps": steps,
        "checkpoints": ckpts,
        "predict_checkpoint": "final weights (Trainer.save_checkpoint after training), step "
                              f"{steps}; CAREamics' default 'last' checkpoint was at step {last_step}",
        "predict_checkpoint_step": steps,
        "last_checkpoint_step": last_step,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "train_seconds": train_seconds,
        "predict_seconds": predict_seconds,
    }
    return out, info


# --------------------------------------------------------------------------------------------- DeepInverse
def run_deepinv(peer: str, x: np.ndarray, budget: float, seed: int, max_epochs: int | None,
                sigma: float | None, crop: int, batch: int) -> tuple[np.ndarray, dict]:
    import deepinv as dinv
    import torch
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    ex = DEEPINV_EXAMPLE[peer]
    device = dinv.utils.get_device(verbose=False)
    img = x if x.ndim == 3 else x[..., None]
    c, h, w = img.shape[2], img.shape[0], img.shape[1]
    y = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]  # 1,C,H,W
    # Neighbor2Neighbor needs even sizes and its half-size sub-images go through the 2-scale UNet: pad to a
    # multiple of 4 by reflection (the same for R2R, for one code path), crop back after prediction.
    ph, pw = (-h) % 4, (-w) % 4
    if ph or pw:
        y = torch.nn.functional.pad(y, (0, pw, 0, ph), mode="reflect")

    noise_info: dict = {}
    if peer == "deepinv-r2r":
        if sigma is None:
            try:
                sigma = float(dinv.models.PatchCovarianceNoiseEstimator()(y).mean())
            except RuntimeError as e:  # "Noise level estimation failed."
                raise InputError(f"deepinv-r2r: deepinv's noise estimator failed ({e}); pass --sigma") from None
            noise_info["sigma_source"] = "deepinv.models.PatchCovarianceNoiseEstimator on the input"
        else:
            noise_info["sigma_source"] = "--sigma"
        if not (sigma > 0):
            raise InputError(f"deepinv-r2r: noise sigma must be > 0, got {sigma}")
        noise_info["sigma"] = sigma
        physics = dinv.physics.Denoising(dinv.physics.GaussianNoise(sigma=sigma))
        loss = dinv.loss.R2RLoss(noise_model=None)  # as in the example: the noise model comes from physics
        noise_info |= {"loss": "R2RLoss(noise_model=None) -> physics' GaussianNoise",
                       "alpha": loss.alpha, "eval_n_samples": loss.eval_n_samples}
    else:
        physics = dinv.physics.Denoising()  # the loss only uses y; A = identity
        loss = dinv.loss.Neighbor2Neighbor()
        noise_info |= {"loss": "Neighbor2Neighbor()", "gamma": loss.gamma}

    seed_all(seed)
    model = dinv.models.ArtifactRemoval(dinv.models.UNet(in_channels=c, out_channels=c, **ex["unet"]).to(device))
    if peer == "deepinv-r2r":
        model = loss.adapt_model(model)  # "important step!" (the example)
    optimizer = torch.optim.Adam(model.parameters(), lr=ex["lr"], weight_decay=ex["weight_decay"])
    # The example: StepLR(step_size=int(epochs * 0.8) + 1). The number of epochs follows from the budget, so
    # step_size is set from the timed steps (below).
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10**9)

    # The examples train on whole 28x28 MNIST images (batch 32 on GPU, 1 on CPU). One 512x512 image as a single
    # batch costs ~10 s a step on 2 CPU cores, so by default the image is cut into random crops with torchvision's
    # RandomCrop (as deepinv's training examples do for larger images), `crop` pixels square, `batch` a step:
    # 8 x 64 x 64 is close to the example's 32 x 28 x 28 pixels a step, and the same as CAREamics' patches.
    # crop=0 trains on the whole image, batch 1 (the example literally).
    hp, wp = y.shape[-2:]
    if crop:
        crop = min(crop, hp, wp) // 4 * 4
        n_items = max(1, (hp // crop) * (wp // crop))  # one epoch ~ one pass over the image
        cropper = transforms.RandomCrop(crop)
    else:
        n_items, batch, cropper = 1, 1, None

    class NoisyCrops(Dataset):  # (x, y) with x = NaN: deepinv's convention for "no ground truth"
        def __len__(self):
            return n_items

        def __getitem__(self, i):
            return torch.tensor(float("nan")), (cropper(y[0]) if cropper else y[0])

    epochs_cap = max_epochs if max_epochs else 10**9
    steps_per_epoch = -(-n_items // batch)
    state = {"start": None, "last": None, "step_seconds": None, "steps": 0, "planned_epochs": None,
             "stopped_by_budget": False, "decay_epoch": None}

    class BudgetTrainer(dinv.Trainer):
        """dinv.Trainer, stopped (via its own max_batch_steps) before a step that would overrun the budget."""

        def step(self, epoch, progress_bar, train_ite=None, train=True, **kwargs):
            out = super().step(epoch, progress_bar, train_ite=train_ite, train=train, **kwargs)
            if train:
                now = time.perf_counter()
                dt = now - state["last"]
                state["last"] = now
                state["steps"] += 1
                # first step carries warm-up; then a running estimate of one step's time
                if state["steps"] >= 2:
                    state["step_seconds"] = dt if state["step_seconds"] is None else \
                        0.8 * state["step_seconds"] + 0.2 * dt
                if optimizer.param_groups[0]["lr"] < ex["lr"]:
                    if state["decay_epoch"] is None:  # the example's single decay has happened: freeze StepLR
                        state["decay_epoch"] = scheduler.last_epoch  # (it would decay every step_size epochs)
                        scheduler.step_size = 10**9
                elif state["step_seconds"] is not None:
                    # epochs the budget allows, re-estimated every step, and the example's decay epoch from them
                    remaining = budget - (now - state["start"])
                    planned_steps = state["steps"] + max(0.0, remaining / state["step_seconds"])
                    planned = min(max(1, round(planned_steps / steps_per_epoch)), epochs_cap)
                    state["planned_epochs"] = planned
                    scheduler.step_size = max(int(planned * 0.8) + 1, scheduler.last_epoch + 1)
                nxt = state["step_seconds"] or dt
                if now - state["start"] + nxt > budget:
                    state["stopped_by_budget"] = True
                    self.max_batch_steps = 0  # Trainer.train() stops after this step
            return out

    trainer = BudgetTrainer(
        model=model, physics=physics, epochs=epochs_cap, scheduler=scheduler, losses=loss, optimizer=optimizer,
        device=device, train_dataloader=DataLoader(NoisyCrops(), batch_size=batch, shuffle=True, num_workers=0),
        eval_dataloader=None, metrics=None, compute_train_metrics=False, save_path=None, plot_images=False,
        verbose=False, show_progress_bar=False,
    )
    t0 = time.perf_counter()
    state["start"] = state["last"] = t0
    model = trainer.train()
    train_seconds = time.perf_counter() - t0
    epochs_done = -(-state["steps"] // steps_per_epoch)
    if state["decay_epoch"] is None and optimizer.param_groups[0]["lr"] < ex["lr"]:  # decayed at the last epoch
        state["decay_epoch"] = scheduler.last_epoch
    if state["planned_epochs"] is None:  # fewer than 2 steps fitted
        state["planned_epochs"] = epochs_done

    t1 = time.perf_counter()
    model.eval()
    with torch.no_grad():
        xhat = model(y.to(device), physics)
    predict_seconds = time.perf_counter() - t1
    out = xhat[0, :, :h, :w].detach().cpu().numpy().transpose(1, 2, 0)
    out = out.reshape(x.shape).astype(np.float32)

    info = {
        "tool": "deepinv",
        "method": "Neighbor2Neighbor" if peer == "deepinv-ne2ne" else "Generalized Recorrupted2Recorrupted (GR2R)",
        "example_followed": ex["example"],
        "api": "dinv.models.ArtifactRemoval(dinv.models.UNet(...)); dinv.loss.%s; dinv.Trainer(...).train()" % (
            "Neighbor2Neighbor()" if peer == "deepinv-ne2ne" else "R2RLoss(noise_model=None).adapt_model(model)"),
        "config": {
            "model": {"class": "ArtifactRemoval(UNet)", "in_channels": c, "out_channels": c, **ex["unet"],
                      "unet_defaults_else": True, "parameters": int(sum(p.numel() for p in model.parameters()))},
            **noise_info,
            "optimizer": {"class": "Adam", "lr": ex["lr"], "weight_decay": ex["weight_decay"]},
            "scheduler": {"class": "StepLR", "gamma": scheduler.gamma,
                          "step_size": int(state["planned_epochs"] * 0.8) + 1,
                          "rule": "int(planned_epochs * 0.8) + 1 (example), planned from the budget; one decay",
                          "decayed_after_epoch": state["decay_epoch"],
                          "final_lr": optimizer.param_groups[0]["lr"]},
            "batch_size": batch,
            "training_data": (f"random {crop}x{crop} crops of the input (torchvision RandomCrop), {n_items} an epoch"
                              if crop else "the whole input image, one per epoch"),
            "padding": {"bottom": ph, "right": pw, "mode": "reflect"},
            "trainer": {"metrics": None, "eval_dataloader": None, "save_path": None},
        },
        "planned_epochs": state["planned_epochs"],
        "epochs_completed": epochs_done,
        "steps_per_epoch": steps_per_epoch,
        "steps": state["steps"],
        "stop": "wall-time budget (dinv.Trainer.max_batch_steps)" if state["stopped_by_budget"]
                else "epochs reached",
        "device": str(device),
        "train_seconds": train_seconds,
        "predict_seconds": predict_seconds,
    }
    return out, info


def write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if not args.budget > 0:
            raise InputError(f"--budget must be > 0 seconds, got {args.budget}")
        if args.seed < 0:
            raise InputError(f"--seed must be >= 0, got {args.seed}")
        if args.max_epochs is not None and args.max_epochs < 1:
            raise InputError(f"--max-epochs must be >= 1, got {args.max_epochs}")
        if args.output.suffix != ".npy":
            raise InputError(f"--output must end in .npy, got {args.output}")
        x, axes = load_image(args.input, args.axes)
        x2 = None
        if args.peer == "careamics-n2n":
            if args.input2 is None:
                raise InputError("careamics-n2n needs --input2 (a second noisy shot of the same scene)")
            x2, _ = load_image(args.input2, axes, "--input2")
            if x2.shape != x.shape:
                raise InputError(f"--input2: shape {x2.shape} differs from --input {x.shape}")
        elif args.input2 is not None:
            raise InputError(f"--input2 is only for careamics-n2n, not {args.peer}")
        if args.crop < 0 or (args.crop and args.crop < 8) or args.batch < 1:
            raise InputError(f"--crop must be 0 or >= 8 and --batch >= 1, got {args.crop}, {args.batch}")
        if args.sigma is not None and args.peer != "deepinv-r2r":
            raise InputError("--sigma is only for deepinv-r2r")

        t_all = time.perf_counter()
        seed_all(args.seed)
        if args.peer.startswith("careamics"):
            out, info = run_careamics(args.peer, x, axes, x2, args.budget, args.seed, args.max_epochs)
        else:
            out, info = run_deepinv(args.peer, x, args.budget, args.seed, args.max_epochs, args.sigma,
                                    args.crop, args.batch)
    except InputError as e:
        print(f"run_peer: error: {e}", file=sys.stderr)
        return 2

    if out.shape != x.shape or not np.all(np.isfinite(out)):
        print(f"run_peer: error: {args.peer} returned shape {out.shape} (expected {x.shape}) "
              f"or non-finite values", file=sys.stderr)
        return 1
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    def save_npy(tmp: str) -> None:
        with open(tmp, "wb") as f:  # np.save(path) would append .npy to the temporary name
            np.save(f, out)

    write_atomic(args.output, save_npy)
    if args.json:
        record = {"peer": args.peer, **info, "versions": versions(), "budget_seconds": args.budget,
                  "seed": args.seed, "axes": axes, "input": str(args.input), "input_shape": list(x.shape),
                  "input2": str(args.input2) if args.input2 else None, "output": str(args.output),
                  "total_seconds": time.perf_counter() - t_all, "torch_threads": __import__("torch").get_num_threads(),
                  "command": [sys.executable, *sys.argv]}
        write_atomic(args.json, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2) + "\n"))
    print(f"{args.peer}: trained {info['train_seconds']:.1f} s ({info['steps']} steps, "
          f"{info['epochs_completed']} epochs), predicted {info['predict_seconds']:.1f} s -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
