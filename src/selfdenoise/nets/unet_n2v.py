"""The UNet of Noise2Void (Krull et al. 2019, CSBDeep/CAREamics convention) and its N2V2 variant.

Each level is two 3x3 convolutions with batch normalisation and ReLU; ``widths`` are the channel counts
of the levels from full resolution down (the last one is the bottleneck; CAREamics' default depth 2 with
32 initial channels is ``(32, 64, 128)``). Down-sampling is 2x2 max pooling; up-sampling is bilinear,
followed by concatenation with the encoder's features of that level and a convolution block; a 1x1
convolution gives the output (no residual: a blind-spot network must not copy its input).

N2V2 (Hoeck et al., ECCV 2022 workshops) removes the checkerboard artefacts of N2V with two changes:
max-blur pooling (a 2x2 max with stride 1, then a normalised 3x3 binomial blur with stride 2) instead of
max pooling, and no skip connection at the top level, so the full-resolution input reaches the output
only through the down-sampled path.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MaxBlurPool(nn.Module):
    """2x2 max (stride 1), then a 3x3 binomial blur with stride 2, channel by channel (N2V2)."""

    def __init__(self):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (k[:, None] * k[None, :] / 16.0)[None, None], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), mode="replicate"), 2, stride=1)
        c = x.shape[1]
        return F.conv2d(x, self.kernel.expand(c, 1, 3, 3).to(x.dtype), padding=1, stride=2, groups=c)


class UNetN2V(nn.Module):
    """Noise2Void's UNet (``n2v2=False``) or N2V2's (``n2v2=True``); any H, W (padded to ``multiple``)."""

    def __init__(self, channels: int = 1, widths: tuple[int, ...] = (32, 64, 128), n2v2: bool = False):
        super().__init__()
        if len(widths) < 2:
            raise ValueError("UNetN2V needs at least two levels")
        self.channels, self.widths, self.n2v2 = channels, tuple(widths), bool(n2v2)
        self.multiple = 2 ** (len(widths) - 1)
        self.down = nn.ModuleList(_block(cin, cout) for cin, cout in zip((channels, *widths[:-2]), widths[:-1]))
        self.pool = MaxBlurPool() if n2v2 else nn.MaxPool2d(2)
        self.bottom = _block(widths[-2], widths[-1])
        top = len(widths) - 2  # the decoder level at full resolution
        self.up = nn.ModuleList(
            _block(widths[i + 1] + (0 if n2v2 and i == 0 else widths[i]), widths[i]) for i in range(top, -1, -1))
        self.out = nn.Conv2d(widths[0], channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if h > ph and w > pw else "replicate")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for block, skip, level in zip(self.up, reversed(skips), range(len(skips) - 1, -1, -1)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(x if self.n2v2 and level == 0 else torch.cat([x, skip], dim=1))
        return self.out(x)[..., :h, :w]
