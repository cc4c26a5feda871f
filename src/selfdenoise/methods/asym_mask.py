"""Asymmetric mask scheme for real camera noise (AMSNet, Liao et al., ECCV 2024): ``--method asym-mask``.

Real sensor noise is spatially correlated, so a network that sees a pixel's neighbours can predict
its noise. The scheme, built on AP-BSN (Lee et al., CVPR 2022), works with any denoiser network:

- **PD**: the noisy image ``y`` is pixel-shuffle down-sampled (``selfdenoise.pixel_shuffle``),
  factor ``a = 5`` in training, ``b = 2`` at inference (AP-BSN's asymmetric PD), which makes the
  noise inside each sub-image nearly independent.
- **Masks**: every pixel of a sub-image gets a random index ``k`` in ``{0..n-1}`` (``n = masks``,
  default 2), shared by its channels. Mask ``M_k`` hides the pixels with index ``k``: the paper
  sets them to 0 (``fill="zero"``); the default here (``fill="mean"``) sets them to the mean of their
  visible 3x3 neighbours, so this library's residual networks start from an interpolation instead
  of from 0 (PolyU, ~105 steps of the ``fast`` preset: 23.5 dB with zeros, 29.6 dB with the mean).
  Either way a hidden pixel's own value never reaches the network.
- **Training, one branch**: the network sees ``M_0 * y_PD`` and the loss is the L1 error on the
  hidden pixels only, ``mean_{k(p)=0} |f(M_0 * y_PD)(p) - y_PD(p)|``: a hidden pixel is predicted
  from its (noise-independent) neighbours, so the identity map is never learned.
- **Inference, complementary masks**: ``x_PD = sum_k [k(p)=k] f(M_k * y_PD)(p)``; the hidden sets
  of the ``n`` masks are disjoint and cover every pixel once, so every output pixel is a prediction
  made without seeing that pixel.
- **R3** (random-replacing refinement, AP-BSN; optional, ``r3``): with ``x`` the PD result,
  ``x_R3 = 1/T sum_t F(R_t * y + (1 - R_t) * x)`` with ``R_t`` i.i.d. Bernoulli(p) pixel masks
  (``T = 8``, ``p = 0.16``) and ``F`` the complementary-mask network at full resolution (no PD):
  the sparse noisy pixels restore detail that PD lost while their noise stays uncorrelated.
- **Noise-aware blend** (``blend``, on by default; an addition to the paper): a prediction made
  without seeing its pixel is unbiased but discards that pixel's own information, which is most of
  the signal when the noise is weak (PolyU: noisy input ~37 dB). Because the noise of ``y`` at ``p``
  is independent of the blind prediction ``f(p)``, ``E(f - y)^2 = tau^2 + sigma^2`` with ``tau^2``
  the prediction's own error; with ``sigma`` the estimated noise level, ``tau^2`` is measured in a
  ``blend_window`` window and the output is the minimum-MSE mix
  ``y + sigma^2 / (sigma^2 + tau^2) * (f - y)``. The window 7 was selected on the 18 PolyU
  validation pairs, one model trained 10 minutes on the noisy photos (window 3/7/15/25:
  37.41/37.46/37.38/37.28 dB; ``benchmarks/selection/real-polyu-asym-mask-blend_window.json``); on the
  same model ``tta`` 1/2/4/8 gives 37.46/37.58/37.66/37.70 dB for 1/2/4/8 times the time
  (``...-tta.json``: 4 chosen for the benchmark; the default stays 1).
- **Collaborative Wiener refinement** (``refine`` passes; 0, off, by default): the blended output
  is the pilot of ``classical.wiener.refine_estimate`` (BM3D's second step), as in ``zero-shot``.
- **TV fine-tune** (optional, ``tv`` > 0): during the last ``1 - tv_from`` of training the loss also
  gets ``tv * TV(x_PD)`` of the inference output on the crop, ``TV(x) = mean|dx/dh| + mean|dx/dw|``,
  against the checkerboard artefacts that PD at inference leaves.

Presets: ``fast`` (CPU default: the compact pixel-unshuffle UNet with widths 32/64/96, 160x160 crops
= 32x32 sub-images, batch 4, Adam 1e-3 with cosine decay) and ``paper`` (the Noise2Noise /
Neighbor2Neighbor UNet, 160x160 crops, AdamW 1e-4 with cosine decay as in the reference
configuration for its UNet; that UNet has 128 features there, 48 here; ~7x slower per step on CPU).

The masked predictor learns slowly: after ~100 steps (2.5 minutes on one busy CPU core) it is still
at the interpolation baseline on PolyU (29.6 dB after PD, 32.7 dB with R3, noisy input 36.4 dB on
the same crops), so give it the full training budget; short zero-shot fits are below the noisy input
on weak real noise.

Zero-shot use (``fit_denoise``, ``selfdenoise denoise x.png --method asym-mask``): the same loss on
random crops of the one image, from scratch (no shipped weights are trained for masked PD inputs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..classical.noise_level import estimate_sigma
from ..core.errors import InputError
from ..core.params import optional
from ..core.pixel_shuffle import pd_down, pd_up
from ..core.tiling import apply_tiled, tta_apply
from .base import NamedNetMethod
from .contract import Batch, option
from .fitting import FitsOneImage

#: widths of the compact UNet used by default: half the parameters (0.38 M) and twice the steps per
#: second of the library's "fast" widths (48, 96, 144), with the same PolyU PSNR after 2.5 minutes
LIGHT_WIDTHS = (32, 64, 96)
#: what a hidden pixel is replaced by in the network's input (see ``hide``)
FILLS = ("zero", "mean")


def mask_indices(shape: tuple[int, ...], masks: int, generator: torch.Generator | None = None) -> Tensor:
    """Random mask index per pixel, (B, 1, H, W) int64 in ``[0, masks)``, shared by the channels."""
    b, _, h, w = shape
    return torch.randint(0, masks, (b, 1, h, w), generator=generator)


def complementary_masks(index: Tensor, masks: int) -> list[Tensor]:
    """Hidden-pixel masks ``[index == k for k in range(masks)]``: disjoint, covering every pixel once."""
    return [index == k for k in range(masks)]


def masked_l1(output: Tensor, target: Tensor, hidden: Tensor) -> Tensor:
    """L1 error averaged over the hidden pixels (all channels) only."""
    weight = hidden.to(output.dtype).expand_as(output)
    return ((output - target).abs() * weight).sum() / weight.sum().clamp_min(1.0)


def hide(x: Tensor, hidden: Tensor, fill: str = "zero") -> Tensor:
    """The masked input ``M * x``: hidden pixels set to 0 (``fill="zero"``, the paper), or to the mean
    of their visible 3x3 neighbours (``fill="mean"``; 0 where none is visible). Either way a hidden
    pixel's own value never reaches the network."""
    visible = (~hidden).to(x.dtype)
    if fill == "zero":
        return x * visible
    c = x.shape[1]
    ones = torch.ones(c + 1, 1, 3, 3, dtype=x.dtype, device=x.device)
    sums = F.conv2d(torch.cat([x * visible, visible], 1), ones, padding=1, groups=c + 1)
    mean = sums[:, :c] / sums[:, c:].clamp_min(1.0)
    return torch.where(hidden, mean, x)


def noise_aware_blend(noisy: Tensor, blind: Tensor, sigma: float, window: int = 7) -> Tensor:
    """``y + sigma^2 / (sigma^2 + tau^2) * (f - y)`` per pixel, with ``tau^2 = max(mean_w (f - y)^2 - sigma^2, 0)``
    over a ``window`` x ``window`` neighbourhood (channels averaged): the minimum-MSE mix of the noisy
    pixel (noise variance ``sigma^2``, 0-1 units) and a blind prediction independent of its noise."""
    var = float(sigma) ** 2
    if var <= 0:
        return blind
    d2 = ((blind - noisy) ** 2).mean(1, keepdim=True)
    pad = window // 2
    d2 = F.avg_pool2d(F.pad(d2, (pad, pad, pad, pad), mode="replicate"), window, stride=1)
    weight = var / (var + (d2 - var).clamp_min(1e-10))
    return noisy + weight * (blind - noisy)


def tv_loss(x: Tensor) -> Tensor:
    """Anisotropic total variation ``mean|x[h+1] - x[h]| + mean|x[w+1] - x[w]|``."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def apply_complementary(model: nn.Module, x: Tensor, masks: int, generator: torch.Generator | None = None,
                        fill: str = "zero") -> Tensor:
    """``sum_k [k(p)=k] f(M_k * x)(p)``: every pixel predicted by the pass that hid it."""
    index = mask_indices(x.shape, masks, generator).to(x.device)
    out = torch.zeros_like(x)
    for hidden in complementary_masks(index, masks):
        pred = model(hide(x, hidden, fill).contiguous(memory_format=torch.channels_last))
        out = torch.where(hidden, pred, out)
    return out


def pd_denoise(model: nn.Module, y: Tensor, factor: int, masks: int, generator: torch.Generator | None = None,
               fill: str = "zero") -> Tensor:
    """PD with ``factor``, complementary-mask denoising of the sub-images, inverse PD."""
    return pd_up(apply_complementary(model, pd_down(y, factor), masks, generator, fill), factor, y.shape[-2:])


def r3_refine(model: nn.Module, noisy: Tensor, denoised: Tensor, masks: int, steps: int = 8, p: float = 0.16,
              generator: torch.Generator | None = None, fill: str = "zero") -> Tensor:
    """Random-replacing refinement: ``1/T sum_t F(R_t * y + (1 - R_t) * x)``, ``R_t`` Bernoulli(p)
    per pixel (shared by the channels), ``F`` the complementary-mask network at full resolution."""
    b, _, h, w = noisy.shape
    acc = torch.zeros_like(denoised)
    for _ in range(steps):
        replace = torch.rand((b, 1, h, w), generator=generator).to(noisy.device) < p
        acc += apply_complementary(model, torch.where(replace, noisy, denoised), masks, generator, fill)
    return acc / steps


@dataclass(kw_only=True)
class AsymMask(FitsOneImage, NamedNetMethod):
    """Asymmetric mask scheme (see the module docstring).

    Options: ``masks`` (n >= 2), ``train_factor`` (PD in training, 5), ``infer_factor`` (PD at
    inference, 2), ``fill`` (what hidden pixels become: "mean" or "zero"), ``r3`` (random-replacing
    refinement on/off), ``r3_steps`` (T = 8), ``r3_p`` (p = 0.16), ``tv`` (TV fine-tune weight,
    0 = off), ``tv_from`` (fraction of training where it starts), ``blend`` (noise-aware blend with
    the noisy pixel on/off), ``blend_window`` (7), ``blend_sigma`` (noise level 0-255 for the blend;
    None = estimated on stride-3 pixel-shuffle sub-images), ``refine`` (collaborative Wiener passes
    after all that, 0 = off), ``net``/``widths`` (any network of ``selfdenoise.nets``), ``tta``, ``tile``.
    Zero-shot fitting: ``budget`` (seconds for the whole image: the fitting gets what one timed inference
    leaves), ``steps``, ``lr``, ``crop``, ``batch``.
    """

    name: ClassVar[str] = "asym-mask"
    #: the network predicts hidden pixels; the denoiser is the inference rule around it (no export)
    exportable: ClassVar[bool] = False
    presets: ClassVar[dict] = {
        "fast": {"net": "fast", "crop": 160, "batch": 4, "lr": 1e-3, "schedule": "cosine", "warmup": 0.02},
        "paper": {"net": "unet", "crop": 160, "batch": 4, "lr": 1e-4, "optimizer": "adamw", "schedule": "cosine",
                  "warmup": 0.0},
    }

    masks: int = option(2)
    train_factor: int = option(5)
    infer_factor: int = option(2)
    r3: bool = option(True)
    r3_steps: int = option(8)
    r3_p: float = option(0.16)
    tv: float = option(0.0)
    tv_from: float = option(0.8)
    fill: str = option("mean")
    blend: bool = option(True)
    blend_window: int = option(7)
    blend_sigma: float | None = option(None)
    refine: int | str = option(0)  # recorded in the model file (unlike the other dataset methods)
    # zero-shot fitting (``fit_denoise``): not recorded
    budget: float | None = option(None, saved=False)
    steps: int | None = option(None, saved=False)
    lr: float = option(1e-3, saved=False)
    crop: int = option(160, saved=False)
    batch: int = option(4, saved=False)

    def __post_init__(self):
        if self.widths is None and self.net == "fast":
            self.widths = LIGHT_WIDTHS
        super().__post_init__()
        if int(self.masks) < 2:
            raise InputError(f"asym-mask: masks must be >= 2 (complementary masks), got {self.masks}")
        if int(self.train_factor) < 1 or int(self.infer_factor) < 1:
            raise InputError("asym-mask: pixel-shuffle factors must be >= 1")
        if self.fill not in FILLS:
            raise InputError(f"asym-mask: fill must be one of {', '.join(FILLS)}, got {self.fill!r}")
        if not 0.0 <= float(self.r3_p) <= 1.0:
            raise InputError(f"asym-mask: r3_p must be a probability, got {self.r3_p}")
        if int(self.blend_window) < 1 or int(self.blend_window) % 2 == 0:
            raise InputError(f"asym-mask: blend_window must be an odd number >= 1, got {self.blend_window}")
        if self.blend_sigma is not None and not 0.0 <= float(self.blend_sigma) <= 255.0:
            raise InputError(f"asym-mask: blend_sigma is a noise level in 0-255, got {self.blend_sigma}")
        self.masks = int(self.masks)
        self.train_factor, self.infer_factor = int(self.train_factor), int(self.infer_factor)
        self.r3, self.r3_steps, self.r3_p = bool(self.r3), max(1, int(self.r3_steps)), float(self.r3_p)
        self.tv, self.tv_from = float(self.tv), float(self.tv_from)
        self.blend, self.blend_window = bool(self.blend), int(self.blend_window)
        self.blend_sigma = optional(self.blend_sigma, float)
        self.lr, self.crop, self.batch = float(self.lr), int(self.crop), int(self.batch)

    # -- training -----------------------------------------------------------------------------
    def training_step(self, batch: Batch, model: nn.Module, step: int, total: int) -> dict[str, Tensor]:
        y = batch.noisy
        seeds = batch.extra.get("seeds")
        gen = torch.Generator().manual_seed(int(seeds[0]) + 7) if seeds else None
        sub = pd_down(y, self.train_factor)
        hidden = (mask_indices(sub.shape, self.masks, gen) == 0).to(y.device)
        out = model(hide(sub, hidden, self.fill).contiguous(memory_format=torch.channels_last))
        rec = masked_l1(out, sub, hidden)
        if self.tv > 0 and total > 0 and step >= self.tv_from * total:
            smooth = tv_loss(pd_denoise(model, y, self.infer_factor, self.masks, gen, self.fill))
            return {"loss": rec + self.tv * smooth, "rec": rec.detach(), "tv": smooth.detach()}
        return {"loss": rec}

    # -- inference ----------------------------------------------------------------------------
    def check_size(self, h: int, w: int, factor: int) -> None:
        if min(h, w) < 2 * factor:
            raise InputError(f"image is {h}x{w}; asym-mask with pixel-shuffle factor {factor} needs at least "
                             f"{2 * factor}x{2 * factor} pixels")

    def _denoise_one(self, model: nn.Module, noisy: Tensor, generator: torch.Generator) -> Tensor:
        out = pd_denoise(model, noisy, self.infer_factor, self.masks, generator, self.fill)
        if self.r3:
            out = r3_refine(model, noisy, out, self.masks, self.r3_steps, self.r3_p, generator, self.fill)
        return out

    @torch.inference_mode()
    def denoise(self, model: nn.Module, noisy: Tensor) -> Tensor:
        """PD (``infer_factor``) + complementary masks, then R3 if on; tiled; ``tta`` flips averaged;
        then the noise-aware blend and the Wiener refinement if on. The masks are drawn from a fixed seed, so the result is
        deterministic."""
        self.check_size(*noisy.shape[-2:], self.infer_factor)
        model.eval()
        gen = torch.Generator().manual_seed(0)
        one = lambda t: self._denoise_one(model, t, gen)
        fn = (lambda t: tta_apply(one, t, self.tta, self.modes)) if self.tta > 1 else one
        multiple = 2 * self.infer_factor * model.multiple
        out = apply_tiled(fn, noisy.float(), self.tile, multiple=multiple)
        if self.blend:
            out = noise_aware_blend(noisy.float(), out, self.noise_level(noisy), self.blend_window)
        return self.refined(noisy, out)

    def noise_level(self, noisy: Tensor) -> float:
        """Noise standard deviation (0-1) for the blend: ``blend_sigma``, or estimated per image on
        stride-3 sub-images (real camera noise is spatially correlated)."""
        if self.blend_sigma is not None:
            return self.blend_sigma / 255.0
        return estimate_sigma(noisy[0].permute(1, 2, 0).float().cpu().numpy(), stride=3) / 255.0

    # -- zero-shot: fit to the one image it denoises (``fitting.FitsOneImage``) ------------------------
    #: zero-shot steps when neither ``steps`` nor ``budget`` is given
    default_steps: ClassVar[int] = 300

    def fit_denoise(self, noisy: Tensor, seed: int = 0, progress: bool = False,
                    weights: dict[str, Tensor] | None = None) -> Tensor:
        """Fit a fresh network (or one started from ``weights``) to one noisy image (1, C, H, W) with the masked PD
        loss, then denoise it."""
        self.check_size(*noisy.shape[-2:], self.train_factor)
        return super().fit_denoise(noisy, seed=seed, progress=progress, weights=weights)
