"""A 1-D hourglass over time for sequences: (batch, channels, frames) -> same shape.

The channels (points x coords, 1434 for 478 face landmarks) are highly correlated: rigid head motion
and a few expression modes move all points together. So the network works in a small ``latent``
code per frame: ``encode`` (channels -> latent, a learned low-rank projection shared by all frames),
an hourglass of 3-tap convolutions over time on that code (``levels`` 2x down-samplings, skip
connections by concatenation), a 1x1 convolution of [hourglass output, code] back to the code, and
``decode`` (latent -> channels). ``init_projection`` starts encode/decode as a given orthonormal basis
(e.g. the principal components of the track) and the code path as the identity, so the untrained
network is that low-rank projection. Dropout before each decoder convolution and on the hourglass
output (Self2Self's ensemble relies on it), never on the code itself.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, 3, padding=1, padding_mode="replicate"), nn.LeakyReLU(0.1))


class Hourglass1D(nn.Module):
    def __init__(self, channels: int, latent: int = 16, width: int = 64, levels: int = 2, dropout: float = 0.3):
        super().__init__()
        latent = min(latent, channels)
        self.levels = levels
        self.encode = nn.Conv1d(channels, latent, 1)
        self.inc = _conv(latent, width)
        self.down = nn.ModuleList(nn.Sequential(nn.Conv1d(width, width, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                                                _conv(width, width)) for _ in range(levels))
        self.up = nn.ModuleList(nn.Sequential(nn.Dropout(dropout), _conv(2 * width, width)) for _ in range(levels))
        self.drop = nn.Dropout(dropout)
        self.mix = nn.Conv1d(width + latent, latent, 1)
        self.decode = nn.Conv1d(latent, channels, 1)

    @property
    def multiple(self) -> int:
        """The frame count must be a multiple of this (``forward`` pads by replication otherwise)."""
        return 2**self.levels

    @torch.no_grad()
    def init_projection(self, basis: Tensor) -> None:
        """Start as the projection on ``basis`` (channels, k <= latent, orthonormal columns)."""
        latent, k = self.encode.out_channels, basis.shape[1]
        self.encode.weight.zero_()
        self.encode.bias.zero_()
        self.encode.weight[:k, :, 0] = basis.T
        self.decode.weight.zero_()
        self.decode.bias.zero_()
        self.decode.weight[:, :k, 0] = basis
        self.mix.weight.zero_()
        self.mix.bias.zero_()
        self.mix.weight[:, -latent:, 0] = torch.eye(latent)

    def forward(self, x: Tensor) -> Tensor:
        frames = x.shape[-1]
        pad = (-frames) % self.multiple
        if pad:
            x = F.pad(x, (0, pad), mode="replicate")
        z = self.encode(x)
        h = self.inc(z)
        skips = []
        for down in self.down:
            skips.append(h)
            h = down(h)
        for up, skip in zip(self.up, reversed(skips)):
            h = F.interpolate(h, size=skip.shape[-1], mode="linear", align_corners=False)
            h = up(torch.cat([h, skip], dim=1))
        return self.decode(self.mix(torch.cat([self.drop(h), z], dim=1)))[..., :frames]
