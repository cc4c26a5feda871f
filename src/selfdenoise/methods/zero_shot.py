"""Zero-shot (single-image) denoising: ``--method zero-shot``.

Recipe (the library default for one noisy photo, no training data, no clean image):

1. Start from a compact prior network (``nets.unet_small.UNetSmall``, widths 32/64/96 on the
   pixel-unshuffled image, ~0.38 M parameters, shipped as fp16 safetensors in
   ``selfdenoise/weights/zero_shot_prior.safetensors``, < 1 MB). How it was made: a ``ne2ne`` model
   trained by ``benchmarks/train_zero_shot_prior.py`` with the library's own loop on fixed noisy
   realisations (recorded seeds, blind Gaussian levels in [5, 55]/255) of the 400 DnCNN gray images and
   the BSD300 test images outside (C)BSD68: never a clean image, never the noise level, no test image of
   any protocol. Its metadata lists the files, seeds, command, steps and validation PSNR.
   Colour photos (``prior="auto"``) start from a larger one instead: the zoo's ``gauss-color`` model (the compact
   UNet at widths 48/96/144, ~0.86 M parameters, blind Noise2Noise trained by ``selfdenoise train`` for 140 CPU minutes
   on two noisy realisations of the BSD300 training photos, sigma 5-50; never a clean image), or, on white noise
   whose level is estimated within 15-35/255, ``gauss-color-15-35`` (that model trained 170 minutes more on the
   band, ``BAND_PRIORS``), with the settings selected for them (``ZOO_RECIPE``: two Wiener passes, window 63, 51 or
   27 as the plan allows, groups of 32 patches of 5x5 pixels every 2 pixels put back under a Kaiser window, their
   result mixed with the network's estimate on white noise: 0.4 of it in the low frequencies, 0.9 in the rest);
   ``fit_denoise(weights=)`` (``denoise --init FILE``) starts from any compact UNet given (``prior_from_weights``).
2. Adapt it to the given image with the blind Neighbor2Neighbor loss (Huang et al., CVPR 2021)
   computed on random 128x128 crops of that image alone: two sub-images made of different
   neighbouring pixels of each 2x2 cell predict each other, plus the consistency regulariser
   (gamma = 2). Default 150 Adam steps (fewer on small images), lr 3e-4 with a 50-step linear
   warm-up and cosine decay, 4 crops per step. Selected on the single-image validation split
   (McMaster, sigma 25, every 3rd image; ``benchmarks/selection/single-image-zero-shot-steps.json``):
   0 / 75 / 150 / 300 steps gave 30.53 / 30.81 / 30.87 / 30.80 dB (more steps over-fit).
3. Denoise the whole image, averaging over the 8 flips/rotations (test-time augmentation).
4. Refine (``refine`` passes; default "auto": 3 when the noise is white, 0 when it is spatially
   correlated, see ``classical.wiener.resolve_passes``): collaborative Wiener filtering of the noisy image with the
   network's output as the pilot (``selfdenoise.classical.wiener``; the second step of BM3D): similar patches
   of the pilot are grouped, and the noisy image's 3-D transform coefficients are shrunk by
   ``P^2 / (P^2 + sigma^2)``. The noise level per opponent colour channel is the larger of the
   patch-PCA estimate and the variance of what the network removed (real, correlated noise is
   under-estimated by the former). Measured on kodim05 (sigma 25) from the prior alone: 26.33 dB,
   one pass 28.79, two passes 29.3-29.4 (CBM3D 29.88; window 19, see ``classical.wiener.AUTO_PASSES`` for the
   third pass and the wider window). On real camera noise (every 10th PolyU pair)
   two passes lost 0.5 dB on average (38.33 -> 37.79), hence "auto".
5. Spatially correlated noise (real camera photos: demosaicing and JPEG spread each pixel's noise over
   its neighbours) breaks step 2, whose two sub-images must have independent noise, and step 4, which
   assumes white noise: the network learns to keep the noise. With ``shuffle`` "auto", such an image
   (``classical.wiener.correlated``) is split into ``CORRELATED_SHUFFLE``^2
   pixel-shuffled sub-images (pixel-shuffle down-sampling, Zhou et al., AAAI 2020), whose noise is close to
   white; steps 2-4 run on them (one network adapted to all of them, ``SHUFFLED_PASSES`` Wiener passes on
   each) and they are put back together. On such noise the adapted network is not the pilot of the
   Wiener passes: non-local means with the correlated-noise level is (``CORRELATED_PILOT``, measured on the
   validation photos), and the result is averaged with it (``CORRELATED_NLM_BLEND``); the network does not run.

6. How much of steps 2-4 runs is planned from the image's size (``quality``: "fast", "balanced" by default,
   "best"): the settings above form the top of a ladder (``LADDER``: fewer flips/rotations averaged, a
   smaller Wiener window, fewer passes further down), each rung priced by a cost model measured on 2 CPU
   cores (``STEP_SECONDS``, ``VIEW_SECONDS``, ``PriorRecipe.pass_seconds``); a preset takes the highest rung whose
   predicted time fits its allowance (``QUALITY``: seconds plus seconds per megapixel), so a 512x512 photo
   gets the full recipe and a 24-MP photo a cheaper one, the same on every machine. ``budget`` (seconds)
   replaces the allowance by a wall-clock limit for the whole image: the plan is priced again at the
   speed the adaptation steps ran at. On correlated noise NLM (``NLM_SECONDS`` per megapixel) runs on every
   rung (alone, with ``NLM_ALONE_H``, on rungs without a Wiener pass: "fast" on a 512x512 photo); where even
   it does not fit (a 12-MP photo with "fast"), the network's route is taken instead.

7. White, signal-dependent noise (fluorescence microscopy, raw sensor data: ``vst`` "auto" and the
   Poisson-Gaussian fit of ``classical.noise_level.poisson_gaussian_model`` says so) is first made white and
   Gaussian by the generalized Anscombe transform with the fitted model; steps 1-6 run on the transformed
   image (scaled to [0, 1]; its noise level is known there), and the exact unbiased inverse brings the result
   back (``classical.vst.vst_denoise``, as BM3D is run on such data by Makitalo & Foi). The prior was made for
   white Gaussian noise, and the Wiener passes assume it: in the image's own domain both see dark pixels with
   little noise and bright ones with much. There ``VST_PASSES`` Wiener passes are piloted by non-local means
   (``VST_PILOT``, ``VST_NLM_H``; selected on the W2S and McMaster-Poisson validation images).

Gray images are run as three equal channels (the prior saw such images in training). If the prior
file is missing the same network is trained from scratch on the image (much weaker in the same time).
The network is blind (no noise level); the refinement and the optional "r2r" adaptation objective
estimate one from the image.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import Tensor, nn

from ..classical.baselines import nlm_tiled
from ..classical.noise_level import auto_sigma, estimated_noise
from ..classical.noise_level import estimate_sigma as patch_pca_sigma
from ..classical.vst import vst_denoise
from ..classical.wiener import AUTO_PASSES, blend_bands, check_passes, refine_estimate
from ..core.augment import random_crops
from ..core.errors import InputError
from ..core.params import auto_or_off, number_or_auto, optional, whole_or_auto
from ..core.pixel_shuffle import pd_down, pd_up
from ..core.tiling import DEFAULT_TILE_PIXELS, apply_tiled, tta_apply
from ..nets.unet_small import UNetSmall
from .base import to_channels_last
from .contract import Batch, method_config, option
from .fitting import fit_single_image
from .ne2ne import neighbor_loss, neighbor_pair_index

PRIOR_PATH = Path(__file__).resolve().parent.parent / "weights" / "zero_shot_prior.safetensors"
#: ``prior="auto"``: colour photos start from the zoo's blind colour Noise2Noise model (``zoo:gauss-color``: the
#: compact UNet at widths 48/96/144, trained by ``selfdenoise train`` on noisy photos only) with ``ZOO_RECIPE``
COLOUR_PRIOR_PATH = PRIOR_PATH.parent / "zoo" / "gauss-color.safetensors"
#: ``prior="auto"`` on colour photos with white noise whose estimated level (0-255) falls in a band: the zoo model
#: trained further on that band (``zoo:gauss-color-15-35``: ``zoo:gauss-color`` plus 170 CPU minutes on sigma 15-35;
#: blind within it), the narrowest band first; ``COLOUR_PRIOR_PATH`` elsewhere, on correlated noise and through the VST
BAND_PRIORS = {(15.0, 35.0): PRIOR_PATH.parent / "zoo" / "gauss-color-15-35.safetensors"}
PRIORS = ("auto", "shipped")

#: ``shuffle="auto"``: the pixel-shuffle factor on spatially correlated noise (1, none, on white noise).
#: Sub-image ``(i, j)`` holds every ``f``-th pixel from ``(i, j)``, so the noise of real photos
#: (demosaiced, compressed) is close to white inside it, which the blind Neighbor2Neighbor loss and the
#: Wiener step assume (the pixel-shuffle down-sampling of Zhou et al., AAAI 2020). Selected on the PolyU
#: validation pairs (``benchmarks/selection/real-polyu-zero-shot-shuffle.json``): 1 / 2 / 3 gave 36.45 /
#: 37.16 / 37.46 dB at 9.1 / 21.3 / 20.5 s per 512x512 photo.
CORRELATED_SHUFFLE = 3
#: ``refine="auto"`` on pixel-shuffled sub-images (their noise is close to white). Selected on every 2nd PolyU
#: validation pair with factor 3 (``benchmarks/selection/real-polyu-zero-shot-refine.json``): 0 / 1 / 2 passes
#: gave 37.11 / 37.75 / 37.88 dB at 8.9 / 22.4 / 34.4 s per 512x512 photo.
SHUFFLED_PASSES = 2
#: a pixel-shuffled sub-image is at least this many pixels a side (a smaller factor is used otherwise)
MIN_SUB_IMAGE = 16
#: ``pilot="auto"`` on spatially correlated noise: the Wiener passes on the sub-images are piloted by non-local
#: means run on the whole image with the correlated-noise level (the stride-3 patch-PCA estimate), not by the
#: adapted network; ``nlm_blend="auto"``: the result is then averaged with that NLM output at this weight.
#: Selected on the validation photos (PolyU 18 pairs / Nam 5 patches, ``benchmarks/select_camera_route.py``,
#: ``benchmarks/selection/camera-route.json``, two passes): network pilot 37.59 / 39.75 dB (its output alone
#: 36.70 / 37.95, noisy 36.33 / 37.04), NLM alone 37.70 / 41.40, NLM pilot 37.92 / 41.43, and with NLM blended
#: in at weight 0.3 / 0.4 / 0.5: 38.06 / 38.07 / 38.05 and 41.66 / 41.69 / 41.70. On real camera noise the
#: adapted prior removes little (it was made for white noise), so the network is not run on this route.
CORRELATED_PILOT = "nlm"
#: then, on the same photos (``benchmarks/select_camera_wiener.py``: ``selection/camera-wiener.json`` and
#: ``camera-wiener-stronger.json``), NLM's ``h`` over the level (``nlm``'s own 0.8 elsewhere), the number of
#: NLM-piloted passes and the blend weight. One pass (7.4 s per photo) was at least as good as two (14.4 s):
#: h 1.0 blend 0.3, 38.12 / 42.10 against 38.12 / 41.99. With one pass and blend 0.3, h 0.8 / 1.0 / 1.2 / 1.4 /
#: 1.6 / 2.0 gave 38.07 / 38.12 / 38.14 / 38.13 / 38.10 / 37.97 dB on PolyU and 41.75 / 42.10 / 42.36 / 42.54 /
#: 42.67 / 42.81 on Nam (blend 0.4 and 0.5 were lower at every h from 1.0). Averaged per protocol, 2.0 (40.390)
#: and 1.6 (40.385) are level; averaged per photo 1.6 is best (39.092 against 39.021 for 2.0), and 2.0 costs the
#: larger set, PolyU, 0.13 dB: h 1.6.
CORRELATED_NLM_H = 1.6
#: where the plan leaves no Wiener pass (``quality`` "fast" on a photo), NLM's output is the result, and its
#: best ``h`` is lower (the same files): 1.0 / 1.2 / 1.4 / 1.6 gave 37.69 / 37.63 / 37.52 / 37.38 dB on PolyU and
#: 41.76 / 42.00 / 42.13 / 42.18 on Nam; averaged per protocol 1.4 (39.826) and 1.2 (39.815) are level, averaged
#: per photo 1.2 is best (38.581 against 38.578 for 1.0 and 38.524 for 1.4): h 1.2.
NLM_ALONE_H = 1.2
NLM_PILOT_PASSES = 1
CORRELATED_NLM_BLEND = 0.3
#: reference seconds per megapixel of ``classical.baselines.nlm_tiled`` (30.8 s on a 12-MP photo, 2 cores)
NLM_SECONDS = 2.6
PILOTS = ("auto", "network", "nlm")
#: ``vst``: whether white, signal-dependent noise is denoised through the generalized Anscombe transform (step 7).
#: Selected on the validation splits where the fit fires, W2S fluorescence frames and McMaster with Poisson noise
#: (``poisson30-color``), every 3rd image (``benchmarks/selection/w2s-widefield-zero-shot-*.json``,
#: ``poisson30-color-zero-shot-*.json``; the decisions below take the mean of the two), in this order:
#: ``vst`` "auto" against "off": 32.85 against 28.98 dB on W2S (network pilot), 31.43 against 30.88 on McMaster
#: (the NLM pilot below);
VST_DEFAULT = "auto"
#: ``pilot="auto"`` through the transform: non-local means (with the known level there) pilots the Wiener passes
#: and the network does not run: NLM 33.36 / 31.43 dB (W2S / McMaster) against the adapted network's 32.85 /
#: 31.71 (mean 32.40 against 32.28), at 14.5 against 19.8 s per W2S frame;
VST_PILOT = "nlm"
#: ``refine="auto"`` there, NLM piloting, on W2S: 1 / 2 / 3 passes gave 33.31 / 33.48 / 33.36 dB at 5.4 / 8.9 /
#: 14.0 s per frame;
VST_PASSES = 2
#: ``nlm_h="auto"`` there, NLM's h over the known level: 0.8 / 1.2 / 1.6 gave 33.48 / 33.61 / 33.62 dB on W2S and
#: 31.43 / 30.98 / 30.59 on McMaster (means 32.46 / 32.30 / 32.11): NLM's own 0.8.
VST_NLM_H = 0.8


@dataclass(frozen=True)
class Route:
    """What runs on one image: pixel-shuffle ``factor``, Wiener ``passes`` ("auto" rungs), the Wiener pilot
    ("network" or "nlm"), the weight of non-local means in the result (``blend``), NLM's noise level
    (``sigma``, 0-255; None when NLM does not run), its ``h`` over that level (``h_factor``; ``alone_h_factor``
    where NLM's output is the result, no Wiener pass following it) and the share of the Wiener passes' result in
    the output (``weight``, the rest the pilot's; ``low_weight`` in the low frequencies, ``wiener.blend_bands``)."""

    factor: int
    passes: int
    pilot: str = "network"
    blend: float = 0.0
    sigma: float | None = None
    h_factor: float = 0.8
    alone_h_factor: float = 0.8
    weight: float = 1.0
    low_weight: float | None = None

    @property
    def network(self) -> bool:
        return self.pilot == "network"


@dataclass(frozen=True)
class Rung:
    """One setting of steps 3-4: flips/rotations averaged, Wiener passes ("auto": ``AUTO_PASSES`` on white
    noise, ``SHUFFLED_PASSES`` on pixel-shuffled correlated noise) and the Wiener search window."""

    tta: int
    passes: int | str
    window: int


#: the settings a plan chooses from, best first (the top rung is the validated recipe of steps 3-5). Each
#: rung is below the one before it on the validation measurements: 3 Wiener passes over 1 (white noise,
#: McMaster: 30.87 / 30.23 dB), 1 over none (29.04; PolyU, shuffled: 37.75 / 37.11), window 51 over 27.
LADDER = (Rung(8, "auto", 51), Rung(8, "auto", 27), Rung(8, 1, 27), Rung(8, 0, 27), Rung(4, 0, 27),
          Rung(2, 0, 27), Rung(1, 0, 27))


@dataclass(frozen=True)
class PriorRecipe:
    """What steps 2-4 run with a prior unless given: adaptation steps (at most), Wiener passes on white noise
    (``refine="auto"``), matching features and shrinkage of those passes, the ladder a plan chooses from, the share
    of the passes' result in the output on white noise after the network (``refine_weight="auto"``) and in its low
    frequencies (``low_weight``, None: the same), the passes' patch side, group size, reference spacing and
    aggregation window (``classical.wiener.collaborative_wiener``'s ``patch``, ``group``, ``step``, ``kaiser``), and
    the reference seconds of one pass over a megapixel with those groups by search window (the cost model)."""

    steps: int
    passes: int
    features: int
    shrinkage: float
    ladder: tuple[Rung, ...]
    weight: float = 1.0
    low_weight: float | None = None
    patch: int = 8
    group: int = 16
    step: int = 3
    kaiser: float = 0.0
    pass_seconds: tuple[tuple[int, float], ...] = ()

    def groups(self) -> dict:
        """The ``collaborative_wiener`` grouping of this recipe's passes."""
        return dict(patch=self.patch, group=self.group, step=self.step, kaiser=self.kaiser)

    def seconds_per_pass(self, window: int) -> float:
        """``pass_seconds`` for any search window: piecewise linear in the window's area between the measured
        windows, extended by the nearest segment beyond them."""
        points = sorted(self.pass_seconds)
        k = max(1, min(len(points) - 1, sum(w < window for w, _ in points)))
        (w0, s0), (w1, s1) = points[k - 1], points[k]
        return s0 + (s1 - s0) * (window**2 - w0**2) / (w1**2 - w0**2)


#: with the shipped prior: the settings selected for it (above, and ``classical.wiener.AUTO_PASSES``)
SHIPPED_RECIPE = PriorRecipe(150, AUTO_PASSES, 8, 1.0, LADDER,
                             pass_seconds=((19, 12.73), (27, 12.22), (51, 12.34), (63, 12.88)))
#: with a zoo model's network (``fit_denoise(weights=)``: ``init``, and with ``prior="auto"`` ``zoo:gauss-color`` on
#: colour photos), selected on McMaster validation (sigma 25, every 3rd image) from ``zoo:gauss-color``, 8
#: flips/rotations, 6x6 features: two passes (one 30.90, two 31.05, three 31.07 dB from the 15-minute model without
#: adaptation, exploratory); then 0 / 50 / 150 adaptation steps from the 55-minute model, 31.24 / 31.25 / 31.33 dB
#: (``benchmarks/selection/single-image-zero-shot-init-steps.json``; run with the window-51 rung although the record
#: says 27: ``quality="best"`` skipped the given window then); from the 140-minute model, window 27: 0 / 150 steps
#: 31.21 / 31.29 dB (``single-image-zero-shot-prior140-steps.json``; the 55-minute model, same code: 31.15 / 31.21,
#: ``...-prior55-steps.json``), and window 27 / 51 31.29 / 31.40 dB at 18.7 / 23.1 s per image
#: (``single-image-zero-shot-prior140-refine_window.json``).
#: Then the share of the passes' result in the output, the rest the network's estimate: 1 / 0.8 / 0.7 / 0.6 gave
#: 31.40 / 31.48 / 31.49 / 31.48 dB (``single-image-zero-shot-refine_weight.json``), so 0.7. From
#: ``zoo:gauss-color-15-35`` (``BAND_PRIORS``) 0.8 / 0.7 / 0.6 / 0.5 gave 31.50 / 31.52 / 31.52 / 31.49 dB, 0 / 50 /
#: 150 steps 31.34 / 31.41 / 31.52, lr 1.5e-4 / 3e-4 / 6e-4 31.49 / 31.52 / 31.50
#: (``single-image-zero-shot-band-*.json``): the same recipe. Then, from the band model, the passes' groups and the mix
#: (``single-image-zero-shot-band-refine_*.json``, in this order): 16 / 32 patches per group 31.52 / 31.56 dB; a
#: Kaiser window (beta 0 / 2) in the aggregation 31.56 / 31.57; references every 3 / 4 pixels 31.570 / 31.561 at
#: 19.0 / 17.9 s per image: 4, whose 0.01 dB is not worth the 1.7 s a Kodak photo would pay (left under CBM3D's time);
#: with 0.8 as the share of the refined image, its share in the low frequencies (``blend_bands``) 0.3 / 0.4 / 0.5 /
#: 0.7 gave 31.58 / 31.59 / 31.59 / 31.57, then with 0.4 there the share in the rest 0.7 / 0.8 / 0.9 31.57 / 31.59 /
#: 31.59 (0.9). A pass costs the same with these groups (2.71 against 2.74 s on a 500x500 photo, median of 8).
#: Then patches of 8 / 6 / 5 / 4 pixels a side: 31.59 / 31.65 / 31.65 / 31.61 dB at 18.3 / 15.7 / 15.4 / 14.8 s per
#: image (smaller patches group more alike, and cost less), and with 5, references every 4 / 3 / 2 pixels 31.65 /
#: 31.67 / 31.69 dB at 16.3 / 16.5 / 18.4 s (``...-band-refine_patch.json``, ``...-band-refine_step-patch5.json``):
#: 5 and 2, which cost about what 8 and 4 did on McMaster; on Kodak the whole recipe took 22.8 s per photo against
#: 21.6 s with the groups of before (runs whose CBM3D took 24.8 / 24.7 s), i.e. about 14% more per pass than 8x8
#: patches every 4 pixels; against the shipped recipe's groups (8x8 every 3, 16 a group) a pass costs less (9.7 against
#: 12.3 s per megapixel with window 51, ``benchmarks/selection/zero-shot-costs.json``): each recipe's passes are
#: priced with their own groups (``pass_seconds``).
#: Then, with this recipe, the share of the refined image 0.9 / 1.0 gave 31.69 / 31.70 dB (low share 0.4;
#: ``...-band-refine_weight-low0.4.json``; with a plain mix, no low share, 31.65 / 31.61: ``...-plain.json``), and
#: shrinkage 1 / 1.15 31.688 / 31.693 (``...-band-refine_shrinkage.json``). From the band model's second stage (65
#: minutes more): shrinkage 1 / 1.15 31.707 / 31.709, then the share 0.9 / 1.0 31.709 / 31.707 dB
#: (``...-band-stage2-*.json``): the share stays; shrinkage stays 1, the 0.002 dB being below what these six images
#: resolve and the NLM-piloted passes on camera noise (selected with 1) taking this recipe's shrinkage too.
#: Window 51 / 63 then gave 31.707 / 31.716 dB at 18.3 / 20.0 s per image (``...-band-stage2-refine_window.json``):
#: not taken then, without a window-63 point in the cost model; from the band model's third stage (65 minutes more)
#: 31.724 / 31.734 dB at 15.5 / 16.3 s (``...-band-stage3-refine_window.json``), a pass with window 63 costing 10% more
#: than with 51 (10.6 against 9.7 s per megapixel): 63 tops the ladder (``ZOO_LADDER``).
#: The "balanced" preset takes the window-63 rung up to about 1 MP (a Kodak photo included), window 51 at about 1.2 MP,
#: two passes with window 27 at 1.5 MP, one from about 1.8 to 3 MP and none from about 4 MP.
ZOO_LADDER = (Rung(8, "auto", 63), *LADDER)
ZOO_RECIPE = PriorRecipe(150, 2, 6, 1.0, ZOO_LADDER, weight=0.9, low_weight=0.4, patch=5, group=32, step=2, kaiser=2.0,
                         pass_seconds=((19, 9.68), (27, 7.91), (51, 9.70), (63, 10.64)))
#: cost model, reference seconds on 2 CPU cores (``benchmarks/zero_shot_costs.py``,
#: ``benchmarks/selection/zero-shot-costs.json``): one adaptation step (4 crops of 128x128), one
#: flip/rotation of the network over a megapixel (in 1024-pixel tiles), one Wiener pass over a megapixel by
#: search window with each recipe's groups (on a 512x512 image; ``PriorRecipe.pass_seconds``), and what every
#: megapixel costs besides (noise test, copies)
STEP_SECONDS = 0.041
VIEW_SECONDS = 0.385
BASE_SECONDS = 0.65
#: above a megapixel the refinement runs on 512-pixel tiles with 32 pixels of overlap
WIENER_TILE_OVERHEAD = (512 / (512 - 64)) ** 2
#: the network runs on tiles of at most this side, overlapping by ``2 * NETWORK_OVERLAP`` pixels and blended
#: over ``NETWORK_OVERLAP``: with 256-pixel tiles on Kodak (sigma 25, same adapted network) 32 / 48 / 64 left
#: kodim20 -0.065 / +0.016 / -0.0004 dB from the whole image (``benchmarks/tiling_check.py``)
NETWORK_TILE = 1024
NETWORK_OVERLAP = 64
#: ``quality`` presets: (seconds, seconds per megapixel) allowed on the reference machine, None = no limit;
#: and the most adaptation steps (None: the method's own, 150 with the prior). "balanced" was set to leave the full
#: recipe to a 512x512 photo when a Wiener pass cost 2-4x what it costs now (43 s predicted with white noise then, 44 s
#: measured on McMaster 1; 31 s with camera noise) and keeps a 12-MP photo within 4x the time of scikit-image's
#: fast NLM.
QUALITY = {"fast": ((5.0, 1.5), 40), "balanced": ((45.0, 7.5), None), "best": (None, None)}


class GrayAsColour(nn.Module):
    """Run a 3-channel network on a 1-channel image (three equal channels, outputs averaged)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)).mean(1, keepdim=True)


@lru_cache(maxsize=4)
def _load_prior_state(path: str) -> tuple[dict[str, Tensor], dict[str, str]] | None:
    """Read the shipped prior (safetensors, never pickle). ``None`` if the file is absent."""
    p = Path(path)
    if not p.is_file():
        return None
    state = {}
    with safe_open(str(p), framework="pt") as f:
        meta = f.metadata() or {}
        for k in f.keys():
            state[k] = f.get_tensor(k).to(torch.float32)
    return state, meta


def colour_prior(level: float | None = None) -> dict[str, Tensor] | None:
    """The weights ``prior="auto"`` starts colour photos from: the ``BAND_PRIORS`` model whose band holds ``level``
    (the white noise's estimated std, 0-255; None: unknown or not white), else ``COLOUR_PRIOR_PATH``; None when
    neither is shipped."""
    bands = sorted(BAND_PRIORS.items(), key=lambda band: band[0][1] - band[0][0])
    paths = [path for (low, high), path in bands if level is not None and low <= level <= high]
    for path in [*paths, COLOUR_PRIOR_PATH]:
        loaded = _load_prior_state(str(path))
        if loaded is not None:
            return loaded[0]
    return None


def prior_training_files(path: str | Path | None = None) -> list[str]:
    """The files ("folder/name") the shipped prior was trained on, from its metadata ([] if unrecorded)."""
    loaded = _load_prior_state(str(path or PRIOR_PATH))
    if loaded is None or "train_files" not in loaded[1]:
        return []
    return sorted({r["file"] for r in json.loads(loaded[1]["train_files"])})


def load_prior(path: str | Path | None = None) -> UNetSmall | None:
    """The shipped prior network (3 channels, eval mode), or ``None`` when no weights exist."""
    loaded = _load_prior_state(str(path or PRIOR_PATH))
    if loaded is None:
        return None
    state, meta = loaded
    widths = tuple(int(w) for w in meta.get("widths", "32,64,96").split(","))
    net = UNetSmall(3, widths, int(meta.get("depth", "2")))
    net.load_state_dict(state)
    return net.eval()


def prior_from_weights(state: dict[str, Tensor]) -> UNetSmall:
    """The compact UNet (eval mode) that ``state`` is the weights of, its channels, widths and depth read from their
    shapes: a dataset method's model of the "fast" network (a zoo model: ``denoise --init zoo:gauss-color``) as the
    prior. Other weights are an ``InputError``."""
    try:
        first = state["enc0.0.weight"]
        depth = sum(1 for k in state if k.startswith("enc0.") and k.endswith(".weight"))
        net = UNetSmall(first.shape[1] // 4, (first.shape[0], state["enc1.0.weight"].shape[0],
                                              state["mid.0.weight"].shape[0]), depth)
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except (KeyError, RuntimeError, ValueError) as e:
        raise InputError("zero-shot starts from the compact UNet only (a model of the 'fast' network, e.g. an "
                         f"n2n or ne2ne zoo model); these weights are another network ({str(e).splitlines()[0]})") from None
    return net.eval()


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def estimate_sigma(x: Tensor) -> float:
    """Gaussian noise std of ``x`` (1, C, H, W) from the finest diagonal wavelet band
    (median absolute deviation / 0.6745, averaged over channels; Donoho's estimator)."""
    a = x[0].double()
    h, w = a.shape[-2:]
    a = a[:, : h - h % 2, : w - w % 2]
    if a.shape[-1] < 2 or a.shape[-2] < 2:
        return 0.0
    hh = (a[:, 0::2, 0::2] - a[:, 0::2, 1::2] - a[:, 1::2, 0::2] + a[:, 1::2, 1::2]) / 2.0
    return float(hh.abs().flatten(1).median(dim=1).values.mean() / 0.6745)


@dataclass(kw_only=True)
class ZeroShot:
    """Single-image denoiser: self-supervised prior adapted to the image (see module docstring).

    Options:
      ``steps``: adaptation steps (default with the prior: 150, fewer for small images so that the
      crops cover each pixel at most ~64 times; 1500 from scratch);
      ``budget``: optional wall-clock limit in seconds for the whole image (adaptation, network and
      refinement are planned to fit it; results are then no longer bit-deterministic);
      ``lr``: adaptation learning rate (Adam, cosine decay; default 3e-4 with the prior, 1e-3
      from scratch);
      ``objective``: "n2n" (Neighbor2Neighbor, blind; default) or "r2r" (Recorrupted-to-Recorrupted
      with the noise level ``sigma`` given or estimated, recorruption strength ``alpha``);
      ``crop``/``batch``: training crop size and crops per step;
      ``gamma``: weight of the Neighbor2Neighbor regulariser;
      ``quality``: "fast", "balanced" (default) or "best": how much of the ``LADDER`` the image's size
      allows (``QUALITY``);
      ``tta``: number of flips/rotations averaged at inference (1..8; default: the plan's);
      ``tile``: inference tile size in pixels (default ``NETWORK_TILE``);
      ``use_prior``: set False to ignore the shipped prior and train from scratch;
      ``prior``: "auto" (default) starts colour photos from ``COLOUR_PRIOR_PATH`` (``zoo:gauss-color``), or on white
      noise of a level in one of ``BAND_PRIORS`` from that band's model, with ``ZOO_RECIPE``, other images from the
      shipped prior; "shipped": the shipped prior on every image;
      ``refine``: collaborative Wiener passes after the network (0 = the network's output as is;
      "auto" = ``classical.wiener.AUTO_PASSES`` on white noise, 0 on spatially correlated noise);
      ``refine_window``/``refine_features``: the refinement's search window and the number of
      lowest DCT frequencies per side compared in matching (``classical.wiener.collaborative_wiener``;
      window 51 and 8 features selected on validation for the shipped prior, 63 and 6 for a zoo model, see
      ``classical.wiener.AUTO_PASSES`` and ``ZOO_RECIPE``; default:
      the plan's); ``refine_shrinkage``: the factor on the noise variance in the Wiener gain
      (``collaborative_wiener``'s ``shrinkage``); ``refine_weight``: the share of the refined image in the output, the
      rest being the estimate the passes started from ("auto": the prior's recipe on white noise after the network,
      1 otherwise); ``refine_low_weight``: that share in the low frequencies (``classical.wiener.blend_bands``;
      "auto": the prior's recipe where ``refine_weight`` is "auto", else the same share);
      ``refine_patch``/``refine_group``/``refine_step``/``refine_kaiser``: the side of a patch, patches per group,
      spacing of the reference patches and the Kaiser window's beta in the aggregation (``collaborative_wiener``'s
      ``patch``, ``group``, ``step``, ``kaiser``; default: the prior's recipe);
      ``shuffle``: pixel-shuffle factor ``f``: the network adapts to, denoises and refines the ``f * f``
      sub-images ``x[i::f, j::f]`` (``core.pixel_shuffle``), which are put back together at the end
      ("auto": ``CORRELATED_SHUFFLE`` on spatially correlated noise, 1 on white noise);
      ``pilot``: what pilots the Wiener passes: "network" (the adapted prior) or "nlm" (non-local means with
      the estimated level; the network does not run) ("auto": ``CORRELATED_PILOT`` on correlated noise,
      ``VST_PILOT`` on white signal-dependent noise (step 7), "network" on other white noise);
      ``nlm_blend``: weight of non-local means averaged into the result, 0..1 ("auto":
      ``CORRELATED_NLM_BLEND`` on correlated noise, 0 on white noise);
      ``nlm_h``: non-local means' ``h`` over its noise level wherever it runs ("auto": ``CORRELATED_NLM_H`` /
      ``NLM_ALONE_H`` on correlated noise, ``VST_NLM_H`` through the transform, 0.8 elsewhere);
      ``vst``: "auto" runs everything through the generalized Anscombe transform when the noise is white and
      signal dependent and no ``sigma`` is given (step 7), "off" never (default: ``VST_DEFAULT``).
    """

    name: ClassVar[str] = "zero-shot"
    exportable: ClassVar[bool] = True
    #: the networks ``fit_denoise(weights=)`` starts from (``denoise(init=)``)
    prior_from_weights = staticmethod(prior_from_weights)

    budget: float | None = option(None)
    steps: int | None = option(None)
    lr: float | None = option(None)
    crop: int = option(128)
    batch: int = option(4)
    gamma: float = option(2.0)
    quality: str = option("balanced", saved=False)
    tta: int | None = option(None)
    objective: str = option("n2n")
    alpha: float = option(0.5)
    sigma: float | None = option(None)  # noise std in [0, 1] units; estimated from the image when None
    use_prior: bool = option(True)
    prior: str = option("auto")
    prior_path: str | Path | None = option(None)
    tile: int | None = option(None)
    refine: int | str = option("auto")
    refine_window: int | None = option(None)  # the top rung's: 51 (AUTO_PASSES), 63 from a zoo model (ZOO_LADDER)
    refine_features: int | None = option(None)  # None: the prior's recipe (8 shipped, 6 from a zoo model)
    refine_shrinkage: float | None = option(None)  # None: the prior's recipe (1)
    refine_weight: float | str = option("auto")
    refine_low_weight: float | str = option("auto")
    refine_patch: int | None = option(None)  # None: the prior's recipe (8; 5 from a zoo model)
    refine_group: int | None = option(None)  # None: the prior's recipe (16; 32 from a zoo model)
    refine_step: int | None = option(None)  # None: the prior's recipe (3; 2 from a zoo model)
    refine_kaiser: float | None = option(None)  # None: the prior's recipe (0, flat; 2 from a zoo model)
    shuffle: int | str = option("auto")
    pilot: str = option("auto")
    nlm_blend: float | str = option("auto")
    nlm_h: float | str = option("auto")
    vst: str = option(VST_DEFAULT)
    has_prior: bool = field(init=False, repr=False, compare=False)
    #: what runs (``steps``/``lr`` resolved): at most 150 (prior) / 1500 (scratch) steps and, with the prior
    #: and no ``steps`` given, at most ``passes`` crop-passes over the image (small images overfit the prior)
    max_steps: int = field(init=False, repr=False, compare=False)
    auto_steps: bool = field(init=False, repr=False, compare=False)
    learning_rate: float = field(init=False, repr=False, compare=False)
    passes: ClassVar[int] = 64
    _sigma_now: float | None = field(default=None, init=False, repr=False, compare=False)
    #: the rung steps 3-4 run with (the plan's, with ``tta``/``refine_window`` given replacing its own)
    rung: Rung = field(init=False, repr=False, compare=False)
    _steps_done: int = field(default=0, init=False, repr=False, compare=False)
    #: the weights ``fit_denoise`` was given to start from (None: the shipped prior), and the cost of their network
    #: per view and step relative to the shipped prior's (the cost model's ``STEP_SECONDS`` and ``VIEW_SECONDS``): their
    #: parameter count over the shipped prior's (widths scaled alike, the convolutions' FLOPs scale with their parameters)
    _start: dict[str, Tensor] | None = field(default=None, init=False, repr=False, compare=False)
    network_cost: float = field(default=1.0, init=False, repr=False, compare=False)
    #: the prior's settings (``SHIPPED_RECIPE``; ``ZOO_RECIPE`` from given weights)
    recipe: PriorRecipe = field(default=SHIPPED_RECIPE, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.crop, self.batch, self.gamma = int(self.crop), int(self.batch), float(self.gamma)
        if self.quality not in QUALITY:
            raise InputError(f"zero-shot: quality must be one of {', '.join(QUALITY)}, got {self.quality!r}")
        self.tta = None if self.tta is None else max(1, min(8, int(self.tta)))
        if self.objective not in ("r2r", "n2n"):
            raise InputError(f"zero-shot: objective must be 'r2r' or 'n2n', got {self.objective!r}")
        self.alpha = float(self.alpha)
        if self.prior not in PRIORS:
            raise InputError(f"zero-shot: prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")
        self.start_from(None)
        self.refine = check_passes(self.refine, self.name)
        self.refine_window = optional(self.refine_window, int)
        self.refine_features = optional(self.refine_features, int)
        self.refine_shrinkage = optional(self.refine_shrinkage, float)
        self.refine_weight = number_or_auto(self.refine_weight, lambda w: 0.0 < w <= 1.0,
                                            "zero-shot: refine_weight is a share in (0, 1] or 'auto'")
        self.refine_low_weight = number_or_auto(self.refine_low_weight, lambda w: 0.0 <= w <= 1.0,
                                                "zero-shot: refine_low_weight is a share in 0..1 or 'auto'")
        self.refine_patch = optional(self.refine_patch, int)
        self.refine_group = optional(self.refine_group, int)
        self.refine_step = optional(self.refine_step, int)
        self.refine_kaiser = optional(self.refine_kaiser, float)
        self.shuffle = whole_or_auto(self.shuffle, 1, "zero-shot: shuffle is a pixel-shuffle factor >= 1 or 'auto'")
        self.rung = self._given(self.recipe.ladder[0])
        if self.pilot not in PILOTS:
            raise InputError(f"zero-shot: pilot must be one of {', '.join(PILOTS)}, got {self.pilot!r}")
        self.nlm_blend = number_or_auto(self.nlm_blend, lambda w: 0.0 <= w <= 1.0,
                                        "zero-shot: nlm_blend is a weight in 0..1 or 'auto'")
        self.nlm_h = number_or_auto(self.nlm_h, lambda h: h > 0, "zero-shot: nlm_h is NLM's h over the noise level, "
                                    "> 0, or 'auto'")
        self.vst = auto_or_off(self.vst, "zero-shot: vst")
        if self.refine_shrinkage is not None and self.refine_shrinkage <= 0:
            raise InputError(f"zero-shot: refine_shrinkage must be > 0, got {self.refine_shrinkage}")
        sizes = {"refine_window": self.refine_window, "refine_features": self.refine_features,
                 "refine_patch": self.refine_patch, "refine_group": self.refine_group, "refine_step": self.refine_step}
        for key, value in sizes.items():
            if value is not None and value < 1:
                raise InputError(f"zero-shot: {key} must be >= 1, got {value}")
        if self.refine_kaiser is not None and self.refine_kaiser < 0:
            raise InputError(f"zero-shot: refine_kaiser must be >= 0, got {self.refine_kaiser}")

    def config(self) -> dict:
        return method_config(self)

    # -- the method contract ------------------------------------------------------------------
    def build_model(self, channels: int) -> nn.Module:
        """The prior (a copy of the one ``fit_denoise`` was given, else the shipped one; from scratch without
        either) on ``channels``-channel images: a colour prior runs a gray image as three equal channels, and
        other channel counts one channel at a time."""
        if self._start is not None:
            net = prior_from_weights(self._start)
        else:
            net = (load_prior(self.prior_path) if self.has_prior else None) or UNetSmall(3)
        net = to_channels_last(net)
        if net.channels == channels:
            return net
        one = GrayAsColour(net) if net.channels == 3 else net
        if net.channels not in (1, 3):
            raise InputError(f"zero-shot: a {net.channels}-channel prior cannot denoise {channels}-channel images")
        return one if channels == 1 else _PerChannel(one)

    def sample_batch(self, noisy: Tensor, generator: torch.Generator) -> Batch:
        """Random crops (even size, at most ``crop``) of the image, or of its pixel-shuffled sub-images
        (N, C, H, W), plus the neighbour sub-sampler's indices."""
        _, c, h, w = noisy.shape
        ch = min(self.crop, h - h % 2)
        cw = min(self.crop, w - w % 2)
        y = random_crops(noisy, self.batch, ch, cw, generator)
        if self.objective == "r2r":
            z = torch.randn(y.shape, generator=generator) * float(self._sigma_now or 0.0)
            return Batch(noisy=y, extra={"z": z.contiguous(memory_format=torch.channels_last)})
        idx = neighbor_pair_index(self.batch, ch // 2, cw // 2, generator)
        return Batch(noisy=y, extra={"idx": idx})

    def training_step(self, batch: Batch, model: nn.Module, step: int, total: int) -> dict[str, Tensor]:
        self._steps_done = step + 1
        z = batch.extra.get("z")
        if z is not None:  # Recorrupted-to-Recorrupted with the (estimated) noise level
            a = self.alpha
            loss = (model(batch.noisy + a * z) - (batch.noisy - z / a)).pow(2).mean()
            return {"loss": loss}
        gamma = self.gamma if self.has_prior or total <= 0 else self.gamma * min(1.0, step / max(1, total))
        loss, rec, reg = neighbor_loss(model, batch.noisy, gamma, idx=batch.extra.get("idx"))
        return {"loss": loss, "rec": rec.detach(), "reg": reg.detach()}

    #: linear learning-rate warm-up (steps): Adam's first updates move every weight by ~lr
    #: regardless of the gradient, which wrecks the prior on small images without it.
    warmup: ClassVar[int] = 50

    def lr_at(self, step: int, total: int, lr: float) -> float:
        warm = min(1.0, (step + 1) / self.warmup)
        if total <= 0:
            return lr * warm
        return lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / total)))

    @torch.inference_mode()
    def denoise(self, model: nn.Module, noisy: Tensor) -> Tensor:
        """Tiled (``tile`` or ``NETWORK_TILE`` pixels) and averaged over ``tta`` flips/rotations, one image of
        the batch (e.g. one pixel-shuffled sub-image) at a time."""
        model.eval()
        run = lambda t: apply_tiled(lambda u: tta_apply(model, u, self.rung.tta), t.float(), self.tile or NETWORK_TILE,
                                    overlap=NETWORK_OVERLAP, multiple=8)
        if len(noisy) == 1:
            return run(noisy)
        out = torch.empty_like(noisy, dtype=torch.float32)
        for k in range(len(noisy)):
            out[k:k + 1] = run(noisy[k:k + 1])
        return out

    def start_from(self, weights: dict[str, Tensor] | None) -> None:
        """Set the prior the next fit starts from: ``weights`` (a compact UNet's, with ``ZOO_RECIPE``) or, when None,
        the shipped prior (``SHIPPED_RECIPE``; from scratch without it or with ``use_prior`` False)."""
        self._start = weights
        if weights is None:
            self.network_cost, self.recipe = 1.0, SHIPPED_RECIPE
            self.has_prior = bool(self.use_prior) and load_prior(self.prior_path) is not None
        else:  # a compact UNet's weights are all its parameters
            self.network_cost = sum(v.numel() for v in weights.values()) / parameter_count(UNetSmall(3))
            self.recipe, self.has_prior = ZOO_RECIPE, True
        self.max_steps = int(self.steps) if self.steps is not None else (self.recipe.steps if self.has_prior else 1500)
        self.auto_steps = self.steps is None and self.has_prior
        self.learning_rate = float(self.lr) if self.lr is not None else (3e-4 if self.has_prior else 1e-3)

    # -- single-image entry point -------------------------------------------------------------
    def fit_denoise(self, noisy: Tensor, seed: int = 0, progress: bool = False,
                    weights: dict[str, Tensor] | None = None) -> Tensor:
        """Denoise one image (1, C, H, W) float32 -> (1, C, H, W) (not clipped). ``weights``: the prior to start from
        in place of the shipped one (``prior_from_weights``: a zoo model's network); the plan prices its network by
        its size (``network_cost``)."""
        if noisy.ndim != 4 or noisy.shape[0] != 1:
            raise ValueError(f"expected a (1, C, H, W) tensor, got {tuple(noisy.shape)}")
        automatic = (weights is None and self.prior == "auto" and self.use_prior and self.prior_path is None
                     and noisy.shape[1] == 3)
        x = noisy.detach().float().contiguous()
        h, w = x.shape[-2:]
        if min(h, w) < 8:  # too small for the 2x2 sub-sampler and crops: replicate-pad first
            ph, pw = max(0, 8 - h), max(0, 8 - w)
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        measured = self.measure(x, always=automatic)
        model = self.noise_model(x, measured)
        if automatic:  # the band prior for the white noise's level (given, else estimated), else the blind one
            white = model is None and not measured[1]  # always measured here
            weights = colour_prior((self.sigma * 255 if self.sigma is not None else measured[0]) if white else None)
        self.start_from(weights)
        if model is None:
            out = self._denoise_white(x, self.sigma, seed, progress, measured=measured)
        else:  # step 7: through the generalized Anscombe transform, where the noise is white with std sigma_255
            gain, read, mu = model
            white = lambda f, sigma_255: self._denoise_white(torch.from_numpy(f), sigma_255 / 255.0, seed,  # noqa: E731
                                                             progress, through_vst=True).numpy()
            out = torch.from_numpy(vst_denoise(white, x.numpy(), gain=gain, sigma=read, mu=mu))
        return out[..., :h, :w].contiguous()

    def measure(self, x: Tensor, always: bool = False) -> tuple[float, bool] | None:
        """``noise_level.auto_sigma`` of ``x`` (1, C, H, W): (level, correlated), measured once for the "auto"
        settings, step 7 and (``always``) the prior's band; None when none of them looks at it."""
        step7 = self.vst == "auto" and self.sigma is None
        if "auto" in (self.shuffle, self.refine, self.pilot, self.nlm_blend) or step7 or always:
            return auto_sigma(x[0].permute(1, 2, 0).numpy())
        return None

    def noise_model(self, x: Tensor, measured: tuple[float, bool] | None = None) -> tuple[float, float, float] | None:
        """The fitted Poisson-Gaussian model (gain, sigma, mu) of ``x`` (1, C, H, W) when step 7 applies: ``vst``
        "auto", no ``sigma`` given, white noise that the fit finds signal dependent; else None. ``measured``:
        ``measure(x)`` when already made."""
        if self.vst == "off" or self.sigma is not None:
            return None
        return estimated_noise(x[0].permute(1, 2, 0).numpy(), measured or self.measure(x))[2]  # correlated: None

    def _denoise_white(self, x: Tensor, sigma: float | None, seed: int, progress: bool,
                       through_vst: bool = False, measured: tuple[float, bool] | None = None) -> Tensor:
        """Steps 1-6 on ``x`` (1, C, H, W, at least 8 pixels a side) whose noise, if white, has std ``sigma``
        ([0, 1] units; None: estimated from it); ``through_vst``: ``x`` is the transformed image of step 7;
        ``measured``: ``measure(x)`` when already made."""
        start = time.perf_counter()
        if self.objective == "r2r":
            self._sigma_now = sigma if sigma is not None else estimate_sigma(x)
        route = self.resolve(x, sigma, through_vst, measured)
        megapixels = x.shape[-2] * x.shape[-1] / 1e6
        allowance = QUALITY[self.quality][0]
        limit = self.budget if self.budget is not None else None if allowance is None else (
            allowance[0] + allowance[1] * megapixels)
        if (self.pilot == self.nlm_blend == "auto" and route.pilot == "nlm" and limit is not None
                and self.rest_seconds(self.recipe.ladder[-1], megapixels, route) > limit):
            # NLM alone does not fit (a large photo with the fast preset): the network's cheapest rung
            route = Route(route.factor, route.passes)
        subs = pd_down(x, route.factor)
        cap = QUALITY[self.quality][1]
        steps = self.max_steps if self.steps is not None or cap is None else min(self.max_steps, cap)
        if not route.network:
            steps = 0
        elif self.auto_steps:
            ch, cw = min(self.crop, subs.shape[-2] - subs.shape[-2] % 2), min(self.crop, subs.shape[-1] - subs.shape[-1] % 2)
            steps = min(steps, max(10, math.ceil(self.passes * x.shape[-2] * x.shape[-1] / (self.batch * ch * cw))))
        seconds = None
        if self.budget is not None:  # a wall-clock limit: the fitting gets what the plan leaves of it
            self.rung = self.plan(megapixels, route, self.budget, steps=0)
            seconds = max(0.0, self.budget - self.rest_seconds(self.rung, megapixels, route)
                          - (time.perf_counter() - start))
            steps = 0 if self.budget <= 0 or seconds <= 0 else steps
        else:
            self.rung = self._given(self.recipe.ladder[0]) if limit is None else self.plan(megapixels, route, limit, steps)
        h_factor = route.h_factor if route.network or self.passes_of(self.rung, route.passes) else route.alone_h_factor
        classical = None if route.sigma is None else nlm_tiled(x, route.sigma, self.tile or NETWORK_TILE,
                                                              NETWORK_OVERLAP, h_factor)
        if route.network:
            fit_start, self._steps_done = time.perf_counter(), 0
            model = fit_single_image(self, subs, steps=steps, seconds=seconds, seed=seed, progress=progress,
                                     lr=self.learning_rate)
            if self.budget is not None and self._steps_done >= 5:  # price the rest at the speed measured here
                speed = (time.perf_counter() - fit_start) / (self._steps_done * STEP_SECONDS * self.network_cost)
                left = self.budget - (time.perf_counter() - start)
                self.rung = self.plan(megapixels, route, left / max(speed, 1e-3), steps=0, best=self.rung)
            out = self.denoise(model, subs)
        else:
            out = pd_down(classical, route.factor)
        passes = self.passes_of(self.rung, route.passes)  # the rung may have been planned again after the fitting
        if passes:
            given = lambda value, default: default if value is None else value  # noqa: E731
            grouped = self.grouped(route)
            grouping = dict(window=self.rung.window, features=given(self.refine_features, self.recipe.features),
                            shrinkage=given(self.refine_shrinkage, self.recipe.shrinkage),
                            patch=given(self.refine_patch, grouped.patch),
                            group=given(self.refine_group, grouped.group), step=given(self.refine_step, grouped.step),
                            kaiser=given(self.refine_kaiser, grouped.kaiser))
            with torch.inference_mode():  # in place (``out`` is an inference tensor), one sub-image at a time
                for k in range(len(subs)):
                    refined = refine_estimate(subs[k:k + 1], out[k:k + 1], passes, sigma, self.tile, **grouping)
                    out[k:k + 1] = blend_bands(refined, out[k:k + 1], route.weight, route.low_weight)
        del subs
        out = pd_up(out, route.factor, x.shape[-2:])
        if route.blend > 0:
            with torch.inference_mode():  # in place, as above
                out = out.mul_(1.0 - route.blend).add_(classical, alpha=route.blend)
        return out

    # -- the plan --------------------------------------------------------------------------------
    def _given(self, rung: Rung) -> Rung:
        """``rung`` with the options the user gave (``tta``, ``refine_window``) in place of its own."""
        return Rung(self.tta or rung.tta, rung.passes, self.refine_window or rung.window)

    def passes_of(self, rung: Rung, auto_passes: int) -> int:
        """Wiener passes that run: ``refine`` if given, else the rung's ("auto": ``auto_passes``)."""
        if self.refine != "auto":
            return self.refine
        return auto_passes if rung.passes == "auto" else min(int(rung.passes), auto_passes)

    def rest_seconds(self, rung: Rung, megapixels: float, route: Route) -> float:
        """Predicted reference seconds of steps 3-4 (and NLM) and the per-pixel overheads with ``rung``."""
        passes = self.passes_of(rung, route.passes)
        tiled = 1.0 if megapixels * 1e6 <= DEFAULT_TILE_PIXELS else WIENER_TILE_OVERHEAD
        views = rung.tta * VIEW_SECONDS * self.network_cost if route.network else 0.0
        nlm = NLM_SECONDS if route.sigma is not None else 0.0
        pass_seconds = self.grouped(route).seconds_per_pass(rung.window)
        return megapixels * (BASE_SECONDS + views + nlm + passes * pass_seconds * tiled)

    def grouped(self, route: Route) -> PriorRecipe:
        """The recipe whose groups the Wiener passes use: the prior's after its network, the shipped otherwise."""
        return self.recipe if route.network else SHIPPED_RECIPE

    def plan(self, megapixels: float, route: Route, seconds: float, steps: int, best: Rung | None = None) -> Rung:
        """The highest rung of the ``LADDER`` (at most ``best``) whose predicted time with ``steps``
        adaptation steps fits ``seconds``; the lowest when none does."""
        ladder = [self._given(r) for r in self.recipe.ladder]
        ladder = ladder[ladder.index(best):] if best in ladder else ladder
        for rung in ladder:
            if steps * STEP_SECONDS * self.network_cost + self.rest_seconds(rung, megapixels, route) <= seconds:
                return rung
        return ladder[-1]

    def resolve(self, x: Tensor, sigma: float | None = None, through_vst: bool = False,
                measured: tuple[float, bool] | None = None) -> Route:
        """The ``Route`` for the image ``x`` (1, C, H, W) whose noise, if white, has std ``sigma`` ([0, 1] units;
        None: ``self.sigma`` or estimated; ``through_vst``: ``x`` is the transformed image of step 7, whose
        white noise is piloted by ``VST_PILOT``; ``measured``: ``measure(x)`` when already made): "auto"
        settings look at whether its noise is spatially correlated (the noise level on stride-3 sub-images over that on the image, at least
        ``noise_level.WHITE_RATIO``; each measured once). Correlated noise is pixel-shuffled by
        ``CORRELATED_SHUFFLE``, refined by ``NLM_PILOT_PASSES`` with ``CORRELATED_PILOT`` and blended with NLM
        (``CORRELATED_NLM_BLEND``, NLM given the stride-3 level and ``CORRELATED_NLM_H``); white noise is refined by
        ``classical.wiener.AUTO_PASSES`` with the network as pilot, without shuffling."""
        auto = "auto" in (self.shuffle, self.refine, self.pilot, self.nlm_blend)
        image = x[0].permute(1, 2, 0).numpy()
        if auto:  # the level NLM would get (stride 3 on correlated noise) and the noise type, each measured once
            level, is_correlated = measured or auto_sigma(image)
        else:
            level = patch_pca_sigma(image) if self.pilot == "nlm" or self.nlm_blend != 0 else None
            is_correlated = False
        factor = self.shuffle if self.shuffle != "auto" else (CORRELATED_SHUFFLE if is_correlated else 1)
        factor = max(1, min(factor, min(x.shape[-2:]) // MIN_SUB_IMAGE))
        if self.refine != "auto":
            passes = self.refine
        else:
            passes = (SHUFFLED_PASSES if factor > 1 else 0) if is_correlated else self.recipe.passes
        white_pilot = VST_PILOT if through_vst else "network"
        pilot = self.pilot if self.pilot != "auto" else (CORRELATED_PILOT if is_correlated else white_pilot)
        if self.refine == "auto" and is_correlated and factor > 1 and pilot == "nlm":
            passes = NLM_PILOT_PASSES
        elif self.refine == "auto" and through_vst and not is_correlated and pilot == "nlm":
            passes = VST_PASSES
        blend = self.nlm_blend if self.nlm_blend != "auto" else (CORRELATED_NLM_BLEND if is_correlated else 0.0)
        sigma = self.sigma if sigma is None else sigma
        nlm_sigma = None
        if pilot == "nlm" or blend > 0:
            nlm_sigma = sigma * 255.0 if sigma is not None else level
        white_h = VST_NLM_H if through_vst else 0.8
        strengths = (CORRELATED_NLM_H, NLM_ALONE_H) if is_correlated else (white_h, white_h)
        strengths = strengths if self.nlm_h == "auto" else (self.nlm_h,) * 2
        weight, low_weight = self.refine_weight, self.refine_low_weight
        mixed = pilot == "network" and not (is_correlated or through_vst)  # the recipe's share applies
        if low_weight == "auto":
            low_weight = self.recipe.low_weight if weight == "auto" and mixed else None
        if weight == "auto":
            weight = self.recipe.weight if mixed else 1.0
        return Route(factor, passes, pilot, blend, nlm_sigma, *strengths, weight, low_weight)


class _PerChannel(nn.Module):
    """Run a 1-channel network (a gray prior, or a colour one as ``GrayAsColour``) on each channel of a C-channel
    image separately."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.inner = net

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.inner(x[:, i : i + 1]) for i in range(x.shape[1])], 1)
