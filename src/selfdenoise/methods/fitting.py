"""The generic single-image fitting loop of the zero-shot methods (``contract.SingleImageMethod``):
the method supplies the network, the batches drawn from the image and the loss; this loop knows no method."""
from __future__ import annotations

import math
import time

import torch
from torch import Tensor, nn

from ..core.augment import random_crops
from ..core.errors import TrainingDiverged
from ..core.progress import tqdm
from .base import to_channels_last
from .contract import Batch, SingleImageMethod


def fit_single_image(
    method: SingleImageMethod,
    noisy: Tensor,
    *,
    steps: int | None = None,
    seconds: float | None = None,
    seed: int = 0,
    progress: bool = False,
    lr: float = 1e-3,
    model: nn.Module | None = None,
    on_step=None,
) -> nn.Module:
    """Fit ``method``'s network to one noisy image ``noisy`` (1, C, H, W) with its own
    self-supervised loss and return the (trained, eval-mode) model.

    It calls the method's ``build_model`` (unless ``model`` is given), ``sample_batch``, ``lr_at`` and
    ``training_step``, with Adam at the learning rate ``lr_at(step, total, lr)``.
    Training stops after ``steps`` steps or ``seconds`` of wall time, whichever comes first (at least
    one of them must be given; with ``seconds`` alone ``total`` is unknown to the step hooks and is
    passed as 0). Results are deterministic for a given seed when stopping on ``steps``.
    ``on_step(step, model)``, when given, is called after every step (``step`` of them done); training stops when
    it returns True. A hook that evaluates the model must leave it in training mode.
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

    bar = None
    if progress:
        bar = tqdm(total=total or None, desc=method.name, unit="step", leave=False)
    t0 = time.perf_counter()
    step = 0
    try:
        while True:
            if steps is not None and step >= steps:
                break
            if seconds is not None and time.perf_counter() - t0 >= seconds:
                break
            for g in opt.param_groups:
                g["lr"] = method.lr_at(step, total, lr)
            batch = method.sample_batch(noisy, gen)
            out = method.training_step(batch, model, step, total)
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"{method.name}: loss is {float(loss.detach())} at step {step} (learning rate "
                                       f"{opt.param_groups[0]['lr']:.3g}); lower the learning rate (-p lr=...)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.3g}")
            if on_step is not None and on_step(step, model):
                break
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return model


class FitsOneImage:
    """The single-image side of a dataset method that can also be fitted to the one image it denoises
    (``contract.SingleImageMethod``): batches of random crops of that image, cosine decay of the learning
    rate, ``steps`` or a ``budget``. The method has the options ``budget``, ``steps``, ``lr``, ``crop`` and
    ``batch``, and the class attribute ``default_steps``."""

    def sample_batch(self, noisy: Tensor, generator: torch.Generator) -> Batch:
        """``batch`` random crops (at most ``crop`` square) of the image, flipped/rotated at random."""
        _, _, h, w = noisy.shape
        y = random_crops(noisy, self.batch, min(self.crop, h), min(self.crop, w), generator)
        return Batch(noisy=y, extra={"seeds": [int(torch.randint(0, 2**31 - 1, (1,), generator=generator))]})

    def lr_at(self, step: int, total: int, lr: float) -> float:
        """Cosine decay over the known number of steps (constant under a time budget alone)."""
        return lr if total <= 0 else lr * 0.5 * (1.0 + math.cos(math.pi * step / total))

    def fit_denoise(self, noisy: Tensor, seed: int = 0, progress: bool = False,
                    weights: dict[str, Tensor] | None = None) -> Tensor:
        """Fit a fresh network (or one started from ``weights``, the state of a trained model of the method) to the
        one noisy image (1, C, H, W) with the method's loss, then denoise it.

        The fitting runs ``steps`` steps (``default_steps`` when neither they nor ``budget`` are given), or fits
        in ``budget`` seconds for the whole image: one inference of the untrained network is timed first and
        the fitting gets what two of them leave."""
        if noisy.ndim != 4 or noisy.shape[0] != 1:
            raise ValueError(f"expected a (1, C, H, W) tensor, got {tuple(noisy.shape)}")
        x = noisy.detach().float().contiguous()
        steps = self.steps if self.steps is not None else (None if self.budget is not None else self.default_steps)
        seconds, model = self.budget, None
        if self.budget is not None or weights is not None:
            start = time.perf_counter()
            torch.manual_seed(seed)
            model = self.build_model(x.shape[1])
            if weights is not None:
                model.load_state_dict(weights)
        if self.budget is not None:
            self.denoise(model, x)
            seconds = max(0.0, self.budget - 2 * (time.perf_counter() - start))
            steps = 0 if seconds <= 0 else steps
        model = fit_single_image(self, x, steps=steps, seconds=seconds, seed=seed, progress=progress, lr=self.lr,
                                 model=model)
        return self.denoise(model, x)
