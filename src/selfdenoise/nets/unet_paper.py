"""The U-Net of Neighbor2Neighbor (Huang et al. 2021; their ``arch_unet.UNet``, non-blind-spot path).

It is the Noise2Noise "autoencoder" (Lehtinen et al. 2018) with three changes that the
Neighbor2Neighbor code makes and that we keep, so that the layer list and the parameter count match
theirs: LeakyReLU slope 0.2 (N2N: 0.1), 2x2 stride-2 transposed convolutions with bias for
up-sampling (N2N: nearest neighbour, no weights), and an output stage of two 3x3 convs to 96
channels followed by three 1x1 convs 96 -> 96 -> 96 -> C (N2N: 3x3 convs 64 -> 32 -> C).

Layers (n = ``features``, C = ``channels``; all 3x3 unless noted)::

    encoder  C->n, n->n, pool, [n->n, pool] x4, n->n            (5 max-pools: /32)
    decoder  up n->n (2x2 transposed), cat skip, 2n->2n, 2n->2n
             [up 2n->2n, cat skip, 3n->2n, 2n->2n] x3
             up 2n->2n, cat input, (2n+C)->96, 96->96
    output   1x1 96->96, 1x1 96->96, 1x1 96->C (no activation)

For C = 3, n = 48 that is 1,259,475 parameters (weights and biases; the transposed convs have biases
too), i.e. the "about 1.26 M" quoted for it; for C = 1 it is 1,256,689. The output stage is 96 wide
whatever n is, as in the reference.

Initialisation as in the reference: every (transposed) conv gets ``kaiming_normal_`` (a=0,
fan_in) scaled by 0.1, biases zero. (N2N itself used plain He-normal, gain sqrt(2), last layer 1.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv(cin: int, cout: int, k: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2), nn.LeakyReLU(0.2, inplace=True)]


def pad_to_multiple(x: Tensor, m: int) -> Tensor:
    """Pad the bottom/right of (.., H, W) up to multiples of ``m``: reflect, or replicate where the
    side is too short to reflect."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph:
        x = F.pad(x, (0, 0, 0, ph), mode="reflect" if ph < h else "replicate")
    if pw:
        x = F.pad(x, (0, pw, 0, 0), mode="reflect" if pw < w else "replicate")
    return x


class UNetPaper(nn.Module):
    """Neighbor2Neighbor U-Net: (B, C, H, W) -> (B, C, H, W) for any H, W >= 1."""

    multiple = 32

    def __init__(self, channels: int = 3, features: int = 48):
        super().__init__()
        self.channels, self.features = channels, features
        n = features
        self.enc0 = nn.Sequential(*_conv(channels, n), *_conv(n, n))
        self.enc = nn.ModuleList(nn.Sequential(*_conv(n, n)) for _ in range(5))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(c, c, 2, stride=2) for c in (n, 2 * n, 2 * n, 2 * n, 2 * n))
        dec_in = (2 * n, 3 * n, 3 * n, 3 * n, 2 * n + channels)
        dec_out = (2 * n,) * 4 + (96,)
        self.dec = nn.ModuleList(nn.Sequential(*_conv(ci, co), *_conv(co, co)) for ci, co in zip(dec_in, dec_out))
        self.out = nn.Sequential(*_conv(96, 96, 1), *_conv(96, 96, 1), nn.Conv2d(96, channels, 1))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
                with torch.no_grad():
                    m.weight.mul_(0.1)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, self.multiple)
        skips = [x]
        t = self.enc0(x)
        for k, block in enumerate(self.enc):
            t = F.max_pool2d(t, 2)
            if k < 4:
                skips.append(t)
            t = block(t)
        for up, dec in zip(self.ups, self.dec):
            t = dec(torch.cat([up(t), skips.pop()], dim=1))
        return self.out(t)[..., :h, :w]
