"""SRResNet (Ledig et al. 2017) without the up-sampling stage, as a denoiser (Noise2Noise).

Layers (f = ``features``, C = ``channels``)::

    head   9x9 C->f, ReLU
    body   ``blocks`` x [3x3 f->f, ReLU, 3x3 f->f] + identity, then 3x3 f->f; + head output
    tail   9x9 f->C (no activation)

No batch normalisation: the Noise2Noise code release contains only its U-Net (``autoencoder``),
no SRResNet, and uses no normalisation anywhere, so we follow that (and EDSR's finding that BN
hurts restoration). Ledig used PReLU; we use ReLU. For C = 3, f = 64, 16 blocks: 1,249,795
parameters. Any H, W >= 1 (zero-padded "same" convs).

Initialisation: He-normal (std sqrt(2 / fan_in)) with zero biases, as in the Noise2Noise code; the
output conv uses gain 1 (std 1 / sqrt(fan_in)), like N2N's last layer, and the second conv of each
residual block is scaled by 0.1 so that the residual stream does not grow ~3x per block at start.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class _ResBlock(nn.Module):
    def __init__(self, f: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(f, f, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(f, f, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """SRResNet denoiser: (B, C, H, W) -> (B, C, H, W) for any H, W >= 1."""

    multiple = 1

    def __init__(self, channels: int = 3, features: int = 64, blocks: int = 16):
        super().__init__()
        self.channels, self.features, self.blocks = channels, features, blocks
        self.head = nn.Sequential(nn.Conv2d(channels, features, 9, padding=4), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*(_ResBlock(features) for _ in range(blocks)),
                                  nn.Conv2d(features, features, 3, padding=1))
        self.tail = nn.Conv2d(features, channels, 9, padding=4)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.kaiming_normal_(self.tail.weight, nonlinearity="linear")
        with torch.no_grad():
            for blk in self.body:
                if isinstance(blk, _ResBlock):
                    blk.body[2].weight.mul_(0.1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.head(x)
        return self.tail(h + self.body(h))
