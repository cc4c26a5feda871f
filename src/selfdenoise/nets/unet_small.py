"""A compact residual UNet that works on the pixel-unshuffled image.

The input (B, C, H, W) is padded to a multiple of 16, pixel-unshuffled by 2 (so the first level
already runs at half resolution, which makes it about 4x cheaper on a CPU than a full-resolution
first level), passed through a three-level UNet and shuffled back. The network predicts a
correction that is added to the input (residual learning). Any H, W >= 1 is accepted.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _block(cin: int, cout: int, n: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
    return nn.Sequential(*layers)


class UNetSmall(nn.Module):
    """Three-level UNet on the 2x2 pixel-unshuffled image.

    ``widths`` are the channel counts at 1/2, 1/4 and 1/8 resolution.
    """

    multiple = 16

    def __init__(self, channels: int = 3, widths: tuple[int, int, int] = (32, 64, 96), depth: int = 2):
        super().__init__()
        self.channels = channels
        self.widths = tuple(widths)
        self.depth = depth
        w0, w1, w2 = widths
        c4 = channels * 4
        self.enc0 = _block(c4, w0, depth)
        self.enc1 = _block(w0, w1, depth)
        self.mid = _block(w1, w2, depth)
        self.up1 = nn.Conv2d(w2, w1 * 4, 1)
        self.dec1 = _block(2 * w1, w1, depth)
        self.up0 = nn.Conv2d(w1, w0 * 4, 1)
        self.dec0 = _block(2 * w0, w0, depth)
        self.out = nn.Conv2d(w0, c4, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if (h > ph and w > pw) else "replicate"
            xp = F.pad(x, (0, pw, 0, ph), mode=mode)
        else:
            xp = x
        z = F.pixel_unshuffle(xp, 2)
        e0 = self.enc0(z)
        e1 = self.enc1(F.avg_pool2d(e0, 2))
        b = self.mid(F.avg_pool2d(e1, 2))
        d1 = self.dec1(torch.cat([F.pixel_shuffle(self.up1(b), 2), e1], 1))
        d0 = self.dec0(torch.cat([F.pixel_shuffle(self.up0(d1), 2), e0], 1))
        y = xp + F.pixel_shuffle(self.out(d0), 2)
        return y[..., :h, :w]
