"""Self2Self (Quan et al., CVPR 2020): ``--method self2self``, one noisy image, no training data.

The network (``nets.pconv_dropout``: partial convolutions in the encoder, dropout in the decoder)
sees Bernoulli-masked copies of the image: each pixel of each channel is kept with probability
``1 - p`` (a different mask per channel; the reference code keeps 70 %, ``p = 0.3``). The loss is the
squared error on the dropped pixels only, averaged over them. Inference averages ``passes``
predictions, each with a fresh mask and fresh decoder dropout (the paper: 100).

The paper's schedule (150,000 Adam steps at 1e-4 on the whole image, ~1.2 h per 256x256 image on a
GPU) would take days on a CPU. The defaults here instead: the network runs on the 2x2
pixel-unshuffled image (``unshuffle=2``), each step sees 4 random 64x64 crops with their own masks,
Adam at 3e-3 (20-step warm-up, then constant), 16 passes at inference. With ``budget`` the training
gets what the ensemble leaves (the ensemble takes at most a quarter of the budget; its cost is
measured on the image first).

The learning rate, re-selected on validation (McMaster, sigma 25, every 9th image, 1,000 steps;
``benchmarks/selection/single-image-self2self-lr.json``): 1e-3 / 3e-3 gave 23.57 / 24.26 dB, so 3e-3.
The table below is the earlier measurement on Kodak crops (protocol v1), kept for the other settings.

Measured under protocol v1 (the step-based version of ``benchmarks/self2self_curve.py`` at its commit, results in
``benchmarks/results/history/v1/single-image/self2self-curve.json``): Kodak center crops, Gaussian sigma=25,
PSNR of the ensemble (8 passes unless noted) at equal step counts; seconds per step are
single-thread CPU time on the 2-core Xeon (4 x 64x64 crops per step):

    kodim03 128x128 (noisy 20.77 dB)      steps:  100     200     300     400     s/step
    paper net, lr 1e-3                           19.36    -       -       -      0.40
    unshuffle 2, lr 1e-3                         19.16   22.89    -      23.52   0.11
    unshuffle 2, lr 1e-3, no dropout              -      23.03    -       -      0.10
    unshuffle 2, lr 3e-3 (default)               21.88   24.98   25.94   25.73   0.11
    unshuffle 2, lr 3e-3, 16 passes               -       -      26.12   25.89
    unshuffle 2, lr 3e-3, cosine to 5 % at 400    -       -       -      25.42   0.12
    unshuffle 2, lr 1e-2                         11.19   11.20 (diverged)
    unshuffle 2, lr 3e-3, depth 3                21.86    -       -       -      0.105
    unshuffle 2, lr 3e-3, width 32                 -      22.60    -      25.50   0.065
    unshuffle 2, lr 3e-3, 8 crops per step       22.60   24.54    -       -      0.21
  Passes at 300 steps (default): 1: 23.92, 4: 25.58, 8: 25.94, 16: 26.12 dB.
  One inference pass on a whole 768x512 Kodak image: 5.4 s with the paper's network, 1.3 s with
  ``unshuffle=2``, 0.6 s with width 32 (single thread). channels_last: 0.40 vs 0.47 s per step.
  Default settings on 256x256 crops, PSNR with 8 / 16 passes:
    kodim01 (noisy 20.29 dB): 200 steps 21.89 / 21.95, 400 steps 22.58 / 22.63
    kodim03 (noisy 20.49 dB): 200 steps 24.30 / 24.44, 400 steps 25.37 / 25.49

Pixel-unshuffling costs nothing measurable per step (19.16 vs 19.36 dB at 100 steps) and makes
steps 2.6x and inference passes 4x cheaper; 3e-3 learns much faster than 1e-3, 1e-2 diverges;
a cosine decay did worse than a constant rate; 8 crops per step cost twice as much for no gain;
width 32 is on par at equal time (25.50 dB after 26 s vs 25.94 dB after 33 s for width 48), so the
paper's width stays. Quality is still far from the paper's: Self2Self
needs tens of thousands of steps, so on a CPU it is a slow method (compare ``zero-shot``, NLM, BM3D).

A prior trained with Self2Self's own loss on noisy images: ``selfdenoise train -m self2self`` runs the same loss
(Bernoulli-masked crops, error on the dropped pixels) over a folder of noisy images with the generic loop; the
model file it writes denoises by the dropout ensemble alone (``--model``), and a fit to one image starts from it
with ``init`` (``selfdenoise denoise -m self2self --init zoo:self2self-color``). The zoo's ``self2self-color`` is
such a prior for colour photos with Gaussian noise (sigma 5-50; 15 CPU minutes on 64-pixel crops: McMaster 26.51 dB
by the ensemble alone; 45 and 40 more on 128-pixel crops: 27.20, 27.35; 25 more at Adam 3e-4: 27.40). Its recipe is
the ``fast`` preset: 3-minute trainings on BSD300 scored on McMaster (every 3rd image, sigma 25) gave 25.47 dB with
lr 1e-3 and the gradient clipped at 0.1, 25.37 unclipped, and collapsed at lr 3e-3 (6.1 dB).
A fit from the prior takes Adam at ``FINE_TUNE_LR``, chosen on McMaster (every 9th image, 60-second budgets):
from the first stage 1e-4 / 3e-4 / 1e-3 gave 25.61 / 25.70 / 14.74 dB (1e-3 wrecks the prior), from the
prior's third stage 1e-4 / 3e-4 gave 26.55 / 26.61 (``benchmarks/selection/single-image-self2self-lr-from-prior.json``).
With 120 s per image from the third stage, Kodak24 (sigma 25) reaches 28.62 dB, 0.5 dB above the prior alone
(``benchmarks/results/single-image-self2self/``; 27.46 from the first stage); the PSNR-vs-seconds curve to 600 s
is made by ``benchmarks/self2self_curve.py``.

Trained longer on 64-pixel crops, the first stage got worse on whole images. A second, 60-minute stage (83,918 steps)
learned the crops well but fell apart on whole images: McMaster 14.61 dB by the ensemble alone, against 26.51 after
the first stage. With 64-pixel crops, unshuffled to 32 and pooled five times, the bottom of the network is 1x1 and
every layer sees the crop's border, and a network trained long enough comes to depend on that (the fit from the
prior at lr 1e-3 above, 14.74 dB, is the same failure). Tiles of the crop's size (``tile=64``) rescue part of it
(McMaster 24.91 dB, Kodak 28.25 against 26.79 for the first stage; but images 7 and 8 of McMaster still break, 20.35
and 14.30 dB) at five times the inference time, so validation kept the first stage and whole-image inference
(records in ``benchmarks/results/history/v2-earlier-settings/zoo-self2self-color-*``). Larger crops remove the
cause: 45 minutes more on 128-pixel crops (a 2x2 bottom) raised McMaster from 26.51 to 27.20 dB and Kodak from
26.79 to 27.81 by the whole-image ensemble alone, 40 more to 27.35 / 28.12 (the third stage), 25 more at Adam 3e-4
to 27.40 / 28.16 (shipped). For a 60-second fit from the first stage, 128-pixel crops gave 25.70 dB against 25.79
with 64 (McMaster, every 9th image), and from the third stage 26.54 against 26.62
(``benchmarks/selection/single-image-self2self-crop.json``), so fits keep 64.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..core.augment import random_crops
from ..core.errors import InputError
from ..core.params import optional
from ..core.tiling import apply_tiled
from ..nets.pconv_dropout import PConvDropoutNet
from .base import to_channels_last
from .contract import Batch, DataNeeds, OneOptimiser, method_config, option
from .fitting import fit_single_image

#: smallest image side accepted (the API's own minimum)
MIN_SIDE = 4


@dataclass(kw_only=True)
class Self2Self(OneOptimiser):
    """Self2Self on one image (see module docstring).

    Options:
      ``budget``: wall-clock cap in seconds for training *and* the ensemble inference (training stops
      early enough to leave room for the passes, which stop at the deadline; results are then no
      longer bit-deterministic);
      ``steps``: training steps (default ``DEFAULT_STEPS`` when no budget is given, none with one);
      ``lr``: Adam learning rate (after a ``warmup``-step linear warm-up; 5e-3 and above collapse; default
      ``SCRATCH_LR``, or ``FINE_TUNE_LR`` when the fit starts from a prior's weights);
      ``p``: probability that a pixel is dropped from the input (and used as a target);
      ``dropout``: decoder dropout probability;
      ``passes``: predictions averaged at inference;
      ``batch``: masked crops per step; ``crop``: their side in pixels (whole image if smaller);
      ``width``/``depth``: encoder channels and number of poolings; ``unshuffle``: run the network on
      the f x f pixel-unshuffled image;
      ``tile``: inference tile size in pixels (default: whole image up to 1 Mpixel; see the module docstring).
    """

    name: ClassVar[str] = "self2self"
    #: the network takes the image and its Bernoulli mask, and inference averages masked passes (no export)
    exportable: ClassVar[bool] = False
    #: training a prior on a folder of noisy images (``selfdenoise train -m self2self``): the CPU recipe of the
    #: dataset methods (``base.FAST_RECIPE``: cosine decay, beta2 0.99, clipped gradients) on the masked crops
    #: this method fits one image with; ``paper``: the paper's Adam at 1e-4 on whole 256-pixel crops
    presets: ClassVar[dict] = {
        "fast": {"crop": 64, "batch": 4, "lr": 1e-3, "schedule": "cosine", "warmup": 0.02, "betas": (0.9, 0.99),
                 "clip": 0.1},
        "paper": {"crop": 256, "batch": 1, "lr": 1e-4, "schedule": "constant", "warmup": 0.0},
    }
    fine_tuning: ClassVar[dict] = {}
    DEFAULT_STEPS: ClassVar[int] = 1000
    warmup: ClassVar[int] = 20
    #: share of the budget the ensemble may take at most (the rest trains)
    inference_share: ClassVar[float] = 0.25
    #: Adam's rate from a fresh network, and from a prior's weights (``fit_denoise(weights=...)``)
    SCRATCH_LR: ClassVar[float] = 3e-3
    FINE_TUNE_LR: ClassVar[float] = 3e-4

    budget: float | None = option(None, saved=False)
    steps: int | None = option(None, saved=False)
    lr: float | None = option(None, saved=False)
    p: float = option(0.3)
    dropout: float = option(0.3)
    passes: int = option(16)
    batch: int = option(4, saved=False)
    crop: int = option(64, saved=False)
    width: int = option(48)
    depth: int = option(5)
    unshuffle: int = option(2)
    tile: int | None = option(None, saved=False)
    #: training steps that run: ``steps``, else ``DEFAULT_STEPS`` without a budget, else as many as it allows
    train_steps: int | None = field(init=False, repr=False, compare=False)
    _deadline: float | None = field(default=None, init=False, repr=False, compare=False)  # inference stops then
    _mask_seed: int = field(default=1, init=False, repr=False, compare=False)  # of the ensemble's masks

    def __post_init__(self):
        if self.budget is not None and not self.budget >= 0:
            raise InputError(f"self2self: budget must be a non-negative number of seconds, got {self.budget!r}")
        if not 0.0 < self.p < 1.0:
            raise InputError(f"self2self: p (drop probability) must be in (0, 1), got {self.p!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"self2self: dropout must be in [0, 1), got {self.dropout!r}")
        if min(int(self.passes), int(self.batch), int(self.crop), int(self.width), int(self.unshuffle)) < 1 or \
                int(self.depth) < 0:
            raise InputError("self2self: passes, batch, crop, width and unshuffle must be >= 1, depth >= 0")
        self.budget = optional(self.budget, float)
        self.train_steps = int(self.steps) if self.steps is not None else (
            None if self.budget is not None else self.DEFAULT_STEPS)
        self.lr = optional(self.lr, float)
        self.p, self.dropout = float(self.p), float(self.dropout)
        self.passes, self.batch, self.crop = int(self.passes), int(self.batch), int(self.crop)
        self.width, self.depth, self.unshuffle = int(self.width), int(self.depth), int(self.unshuffle)

    def config(self) -> dict:
        return method_config(self)

    # -- the method contract ------------------------------------------------------------------
    def build_model(self, channels: int) -> nn.Module:
        net = PConvDropoutNet(channels, self.width, self.depth, self.dropout, self.unshuffle)
        return to_channels_last(net)

    def keep_mask(self, shape: torch.Size | tuple, generator: torch.Generator | None) -> Tensor:
        """Bernoulli mask, 1 = pixel kept (probability ``1 - p``), drawn independently per channel."""
        return (torch.rand(shape, generator=generator) >= self.p).float()

    def sample_batch(self, noisy: Tensor, generator: torch.Generator) -> Batch:
        """``batch`` random crops of the image, each with its own per-channel Bernoulli mask."""
        _, _, h, w = noisy.shape
        y = random_crops(noisy, self.batch, min(self.crop, h), min(self.crop, w), generator, flips=False)
        mask = self.keep_mask(y.shape, generator).contiguous(memory_format=torch.channels_last)
        return Batch(noisy=y, mask=mask)

    def data_needs(self) -> DataNeeds:
        """Training a prior on a folder: single noisy crops, flipped and rotated."""
        return DataNeeds()

    def training_step(self, batch: Batch, model: nn.Module, step: int, total: int) -> dict[str, Tensor]:
        """Squared error on the dropped pixels. Crops from a data set come without masks: drawn here, from the
        crop's seed (a resumed run draws the same ones)."""
        y, keep = batch.noisy, batch.mask
        if keep is None:
            seeds = batch.extra.get("seeds")
            gen = torch.Generator().manual_seed(int(seeds[0]) + 7) if seeds else None
            keep = self.keep_mask(y.shape, gen).to(y.device).contiguous(memory_format=torch.channels_last)
        out = model(y * keep, keep)
        return {"loss": masked_mse(out, y, 1.0 - keep)}

    def learning_rate(self, from_prior: bool) -> float:
        """Adam's peak rate of a fit: ``lr`` when given, else ``FINE_TUNE_LR`` from a prior's weights or
        ``SCRATCH_LR`` from a fresh network."""
        return self.lr if self.lr is not None else self.FINE_TUNE_LR if from_prior else self.SCRATCH_LR

    def lr_at(self, step: int, total: int, lr: float) -> float:
        """Linear warm-up over ``warmup`` steps, then constant (a cosine decay measured worse)."""
        return lr * min(1.0, (step + 1) / self.warmup)

    @torch.inference_mode()
    def denoise(self, model: nn.Module, noisy: Tensor) -> Tensor:
        """Mean of ``passes`` predictions, each with a fresh Bernoulli mask and decoder dropout (fewer
        when a budget's deadline comes first; always at least one). Masks and dropout are drawn from the
        seed of the fit (1 for a trained model), so a call gives the same result each time."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._mask_seed)
            return self._ensemble(model, noisy)

    def _ensemble(self, model: nn.Module, noisy: Tensor) -> Tensor:
        model.eval()
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.train()  # dropout stays on: the ensemble averages over it
        x = noisy.float().contiguous(memory_format=torch.channels_last)
        generator = torch.Generator().manual_seed(self._mask_seed)

        def one_pass(t: Tensor) -> Tensor:
            keep = self.keep_mask(t.shape, generator).to(t.device).contiguous(memory_format=torch.channels_last)
            return model(t * keep, keep)

        total = None
        for k in range(self.passes):
            if k > 0 and self._deadline is not None and time.perf_counter() >= self._deadline:
                break
            y = apply_tiled(one_pass, x, self.tile)
            total = y if total is None else total + y
            n = k + 1
        model.eval()
        return (total / n).contiguous()

    # -- single-image entry point -------------------------------------------------------------
    def fit_denoise(self, noisy: Tensor, seed: int = 0, progress: bool = False,
                    weights: dict[str, Tensor] | None = None) -> Tensor:
        """Denoise one image (1, C, H, W) float32 -> (1, C, H, W) in [0, 1], fitting a fresh network, or one
        started from ``weights`` (the state of a prior this method's ``build_model`` makes)."""
        if not isinstance(noisy, Tensor) or noisy.ndim != 4 or noisy.shape[0] != 1:
            raise InputError(f"self2self: expected a (1, C, H, W) tensor, got {tuple(getattr(noisy, 'shape', ()))}")
        h, w = noisy.shape[-2:]
        if min(h, w) < MIN_SIDE:
            raise InputError(f"self2self: image is {h}x{w}; at least {MIN_SIDE}x{MIN_SIDE} pixels are needed")
        x = noisy.detach().float().contiguous()
        if not torch.isfinite(x).all():
            raise InputError("self2self: the image contains NaN/Inf values")
        start = time.perf_counter()
        self._mask_seed = seed + 1
        self._deadline = None
        torch.manual_seed(seed)
        model = self.build_model(x.shape[1])
        if weights is not None:
            model.load_state_dict(weights)
        lr = self.learning_rate(from_prior=weights is not None)
        seconds = None
        if self.budget is not None:
            torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the first optimiser pays for imports
            pass_s = self._time_one_pass(model, x)
            reserve = min(self.passes * pass_s, self.inference_share * self.budget)
            seconds = max(0.0, self.budget - reserve - (time.perf_counter() - start))
            self._deadline = start + self.budget
        if self.train_steps == 0 or seconds == 0.0:
            model.eval()
        else:
            model = fit_single_image(self, x, steps=self.train_steps, seconds=seconds, seed=seed, progress=progress,
                                     lr=lr, model=model)
        try:
            return self.denoise(model, x)
        finally:
            self._deadline = None

    def _time_one_pass(self, model: nn.Module, x: Tensor) -> float:
        """Seconds of one inference pass on ``x`` (measured once, with the untrained network)."""
        t = time.perf_counter()
        saved, self.passes = self.passes, 1
        try:
            self.denoise(model, x)
        finally:
            self.passes = saved
        model.train()
        return time.perf_counter() - t


def masked_mse(out: Tensor, target: Tensor, where: Tensor) -> Tensor:
    """Mean squared error over the pixels where ``where`` is 1 (the dropped ones)."""
    return ((out - target).pow(2) * where).sum() / where.sum().clamp(min=1.0)
