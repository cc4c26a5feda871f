"""TCFL, triplet cross-fusion learning (Geng et al., IEEE TMI 2022): ``--method tcfl``.

Unpaired learning of OCT speckle removal from noisy B-scans A, B and clean images C of *other*
scans. A generator G predicts the noise of its input (a DnCNN); the clean estimate is x - G(x).

    noise to clean   N_A = G(A), N_B = G(B);  C_A1 = A - N_A,  C_B1 = B - N_B
    cross fusion     C_A2 = (C_A1 + N_B) - G(C_A1 + N_B),  C_B2 = (C_B1 + N_A) - G(C_B1 + N_A)
    clean to noisy   C_C1 = (C + N_A) - G(C + N_A),  C_C2 = (C + N_B) - G(C + N_B)

    L_pixel = |C_A1 - C_A2| + |C_B1 - C_B2| + |C_C1 - C| + |C_C2 - C|          (mean L1 each)
    L_G     = sum over the six fakes f of gan_G(D(f))  +  lambda * L_pixel
    L_D     = gan_real(D(C))  +  w_fake * sum over the fakes of gan_fake(D(f))

with a PatchGAN D judging clean images. Without the adversarial term every L1 term is zero for a
G that outputs one fixed tensor (N_A = N_B: the swaps change nothing) — the collapse the
reproduction reports; ``collapse_patience`` stops training with a warning when the predicted noises
of different inputs stay nearly equal.

Official schedule (``--preset paper``, from the authors' training script): LSGAN (MSE to 1 / 0),
lambda = 6, w_fake = 0.1, Adam 2e-5 with betas (0.5, 0.999) for both networks, constant rate, whole
640x640 B-scans in batches of 2 (here 448x448 crops: Duke B-scans are 450 pixels high). The CPU
preset ``fast`` halves the widths (32 features: one 900x450 B-scan in about 1 CPU-second instead of
3.4) and trains on 64x64 crops (at 1e-4 in these measurements): 1.4 steps/s on 2 cores, four times as many steps as with
128x128 crops; after 10 minutes 25.9 dB on the oct-duke test scans, where 12 minutes on 128x128 crops
(268 steps) gave 19.7 dB. The rate was then re-selected on validation (eyes 08-09, 4-minute trainings;
``benchmarks/selection/oct-duke-tcfl-lr.json``): 1e-4 / 2e-4 gave 19.35 / 25.38 dB, so 2e-4 (the current
oct-duke result, 8 minutes at 1e-4, predates it). ``gan="wgan"`` is the reproduction's variant:
Wasserstein losses, lambda = 25, critic weights clipped to +-1e-3 after each step. B is another sample of the same batch
(the mirror image of A when the batch holds one sample); C comes from ``batch.extra["clean"]``.
Inference: C = A - G(A), one pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.errors import InputError
from ..nets.dncnn import DnCNN
from ..nets.patchgan import PatchGAN
from .base import DatasetMethodBase, to_channels_last
from .contract import Batch, DataNeeds, StopTraining, option

GANS = ("lsgan", "wgan")
PIXEL_WEIGHT = {"lsgan": 6.0, "wgan": 25.0}


class TCFLNet(nn.Module):
    """Generator (noise predictor) and critic in one module; ``forward`` gives the clean estimate."""

    multiple = 1

    def __init__(self, channels: int, depth: int, features: int, critic_features: int):
        super().__init__()
        self.generator = DnCNN(channels, depth, features)
        self.critic = PatchGAN(channels, critic_features)

    def forward(self, x: Tensor) -> Tensor:
        return x - self.generator(x)


@dataclass(kw_only=True)
class TCFL(DatasetMethodBase):
    """TCFL. ``gan``: lsgan (official) | wgan; ``pixel_weight``: lambda (default 6 / 25);
    ``adversarial_weight``: scales the generator's GAN term (0 reproduces the collapse);
    ``collapse_ratio``/``collapse_patience``: stop when mean|N_A - N_B| < ratio * mean|A - B| for
    that many consecutive steps (0 patience: never)."""

    name: ClassVar[str] = "tcfl"
    presets: ClassVar[dict] = {
        "fast": {"features": 32, "critic_features": 32, "crop": 64, "batch": 4, "lr": 2e-4, "betas": (0.5, 0.999),
                 "schedule": "constant", "warmup": 0.0},
        "paper": {"features": 64, "critic_features": 64, "crop": 448, "batch": 2, "lr": 2e-5, "betas": (0.5, 0.999),
                  "schedule": "constant", "warmup": 0.0},
    }

    gan: str = option("lsgan")
    depth: int = option(10)
    features: int = option(64)
    critic_features: int = option(64)
    pixel_weight: float | None = option(None)
    adversarial_weight: float = option(1.0)
    fake_weight: float = option(0.1)
    critic_clip: float = option(1e-3)
    collapse_ratio: float = option(0.01)
    collapse_patience: int = option(50)
    _collapsed_steps: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.gan not in GANS:
            raise InputError(f"tcfl: unknown gan '{self.gan}' (choose from: {', '.join(GANS)})")
        super().__post_init__()
        self.depth, self.features, self.critic_features = int(self.depth), int(self.features), int(self.critic_features)
        self.pixel_weight = float(PIXEL_WEIGHT[self.gan] if self.pixel_weight is None else self.pixel_weight)
        self.adversarial_weight, self.fake_weight = float(self.adversarial_weight), float(self.fake_weight)
        self.critic_clip = float(self.critic_clip)
        self.collapse_ratio, self.collapse_patience = float(self.collapse_ratio), int(self.collapse_patience)

    def data_needs(self) -> DataNeeds:
        return DataNeeds(clean=True, augment=self.augment)

    def build_model(self, channels: int) -> nn.Module:
        return to_channels_last(TCFLNet(channels, self.depth, self.features, self.critic_features))

    def param_groups(self, model: nn.Module) -> dict:
        return {"generator": model.generator.parameters(), "critic": model.critic.parameters()}

    def after_step(self, model: nn.Module, step: int) -> None:
        if self.gan == "wgan":  # the Lipschitz constraint of the original WGAN
            for p in model.critic.parameters():
                p.clamp_(-self.critic_clip, self.critic_clip)

    # ------------------------------------------------------------------------------ the objective
    def triplet(self, G: nn.Module, A: Tensor, B: Tensor, C: Tensor) -> dict[str, Tensor]:
        """The three paths of the paper: noise-to-clean, cross fusion, clean-to-noisy-to-clean."""
        N_A, N_B = G(A), G(B)
        C_A1, C_B1 = A - N_A, B - N_B
        I_A, I_B = C_A1 + N_B, C_B1 + N_A  # swap the predicted noises
        C_A2, C_B2 = I_A - G(I_A), I_B - G(I_B)
        I_C1, I_C2 = C + N_A, C + N_B  # put the predicted noises on an unpaired clean image
        C_C1, C_C2 = I_C1 - G(I_C1), I_C2 - G(I_C2)
        return {"N_A": N_A, "N_B": N_B, "C_A1": C_A1, "C_B1": C_B1, "C_A2": C_A2, "C_B2": C_B2,
                "C_C1": C_C1, "C_C2": C_C2}

    @staticmethod
    def pixel_loss(t: dict[str, Tensor], C: Tensor) -> Tensor:
        l1 = F.l1_loss
        return l1(t["C_A1"], t["C_A2"]) + l1(t["C_B1"], t["C_B2"]) + l1(t["C_C1"], C) + l1(t["C_C2"], C)

    def generator_gan_loss(self, scores: list[Tensor]) -> Tensor:
        """Each fake should be judged clean: LSGAN sum of mean (D - 1)^2; WGAN -mean D."""
        if self.gan == "lsgan":
            return sum((s - 1).pow(2).mean() for s in scores)
        return -torch.stack([s.mean() for s in scores]).mean()

    def critic_loss(self, real: Tensor, fakes: list[Tensor]) -> Tensor:
        """LSGAN: mean (D(C) - 1)^2 + w_fake * sum of mean D(f)^2; WGAN: mean D(f) - mean D(C)."""
        if self.gan == "lsgan":
            return (real - 1).pow(2).mean() + self.fake_weight * sum(f.pow(2).mean() for f in fakes)
        return torch.stack([f.mean() for f in fakes]).mean() - real.mean()

    def training_step(self, batch: Batch, model: nn.Module, step: int, total: int) -> dict[str, Tensor]:
        C = batch.extra.get("clean")
        if C is None:
            raise InputError("tcfl needs unpaired clean images: give a folder of clean images of other scans "
                             "(--clean DIR)")
        A = batch.noisy
        B = A.roll(1, dims=0) if A.shape[0] > 1 else A.flip(-1)
        G, D = model.generator, model.critic
        t = self.triplet(G, A, B, C)
        self.check_collapse(A, B, t["N_A"], t["N_B"])
        fakes = [t[k] for k in ("C_A1", "C_B1", "C_A2", "C_B2", "C_C1", "C_C2")]
        n = A.shape[0]
        # one critic pass over all six fakes (instance norm: each image is judged on its own)
        scores = list(D(torch.cat(fakes)).split(n))
        pixel = self.pixel_loss(t, C)
        adversarial = self.generator_gan_loss(scores)
        judged = D(torch.cat([C] + [f.detach() for f in fakes])).split(n)
        critic = self.critic_loss(judged[0], list(judged[1:]))
        return {"loss": self.adversarial_weight * adversarial + self.pixel_weight * pixel,
                "critic_loss": critic, "pixel": pixel.detach(), "adversarial": adversarial.detach()}

    @torch.no_grad()
    def noise_spread(self, A: Tensor, B: Tensor, N_A: Tensor, N_B: Tensor) -> float:
        """mean|N_A - N_B| / mean|A - B|: near 0 when G predicts the same noise whatever its input."""
        return float((N_A - N_B).abs().mean() / (A - B).abs().mean().clamp_min(1e-8))

    def check_collapse(self, A: Tensor, B: Tensor, N_A: Tensor, N_B: Tensor) -> None:
        if self.collapse_patience <= 0:
            return
        spread = self.noise_spread(A, B, N_A, N_B)
        self._collapsed_steps = self._collapsed_steps + 1 if spread < self.collapse_ratio else 0
        if self._collapsed_steps >= self.collapse_patience:
            self._collapsed_steps = 0
            raise StopTraining(f"tcfl collapsed: the generator predicts the same noise for different inputs "
                               f"(spread {spread:.2g} < {self.collapse_ratio:g} for {self.collapse_patience} steps); "
                               "keep the adversarial term on, or lower the learning rate")
