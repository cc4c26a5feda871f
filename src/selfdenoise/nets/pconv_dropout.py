"""The Self2Self encoder-decoder (Quan et al., CVPR 2020): partial convolutions in the encoder,
dropout before every decoder convolution, concatenation skips, sigmoid output.

Layout of the paper's network (``width=48``, ``depth=5``): the encoder has two partial convolutions
at full resolution, then ``depth`` times (max-pool, partial convolution); the decoder up-samples
(nearest), concatenates the pooled encoder feature of the same resolution and applies two
convolutions of ``2 * width`` channels per level; at full resolution it concatenates the masked input
itself and ends with ``4/3 * width`` and ``2/3 * width`` channels (64 and 32 for the paper's 48) and
a sigmoid.
Every convolution is 3x3 with LeakyReLU(0.1). The input is the masked image as it is (no
normalisation). Any height and width are accepted (ceil-mode pooling, crops after up-sampling).

``unshuffle=f > 1`` runs the same network on the f x f pixel-unshuffled image (C f^2 channels at
1/f resolution, about f^2 times cheaper), padding the image to a multiple of f.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PartialConv2d(nn.Conv2d):
    """Mask-aware convolution (Liu et al., ECCV 2018), same-size output, zero padding.

    With window sums taken over the kernel window and all input channels:
    ``out = W * (x . m) * sum(1) / sum(m) + b`` where ``sum(m) > 0``, else ``0``; the updated
    mask is 1 where ``sum(m) > 0``. ``mask`` has either as many channels as ``x`` (a different mask
    per channel) or one (shared by all channels). Returns ``(out, new_mask)``, the mask with one channel.
    """

    def __init__(self, cin: int, cout: int, kernel: int = 3):
        super().__init__(cin, cout, kernel, padding=kernel // 2)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        k = self.kernel_size
        with torch.no_grad():
            per_pixel = mask.sum(1, keepdim=True) * (x.shape[1] / mask.shape[1])
            ones = torch.ones(1, 1, *k, dtype=x.dtype, device=x.device)
            covered = F.conv2d(per_pixel, ones, padding=self.padding)
            new_mask = (covered > 1e-6).to(x.dtype)
            ratio = (k[0] * k[1] * x.shape[1]) / covered.clamp(min=1e-6) * new_mask
        out = F.conv2d(x * mask, self.weight, None, padding=self.padding)
        out = out * ratio + self.bias.view(1, -1, 1, 1)
        return out * new_mask, new_mask


def _upsample_to(x: Tensor, like: Tensor) -> Tensor:
    x = F.interpolate(x, scale_factor=2.0, mode="nearest")
    return x[..., : like.shape[-2], : like.shape[-1]]


class PConvDropoutNet(nn.Module):
    """Self2Self network: ``forward(x, mask)`` with ``x`` the masked image and ``mask`` 1 at kept
    pixels (same shape as ``x``, or one channel); returns values in (0, 1), same shape as ``x``.

    ``width``: encoder channels (decoder ``2 * width``); ``depth``: number of poolings;
    ``dropout``: drop probability before each decoder convolution (active whenever the dropout
    modules are in training mode; Self2Self keeps them on at inference); ``unshuffle``: see module doc.
    """

    def __init__(self, channels: int = 3, width: int = 48, depth: int = 5, dropout: float = 0.3,
                 unshuffle: int = 1):
        super().__init__()
        self.channels, self.width, self.depth, self.unshuffle = channels, width, depth, int(unshuffle)
        self.multiple = 1  # any height and width
        c = channels * self.unshuffle**2
        w, wd = width, 2 * width
        self.enc0 = PartialConv2d(c, w)
        self.enc1 = PartialConv2d(w, w)
        self.down = nn.ModuleList(PartialConv2d(w, w) for _ in range(depth))
        self.up = nn.ModuleList()
        for level in range(depth - 1):
            cin = 2 * w if level == 0 else wd + w
            self.up.append(nn.ModuleList([nn.Conv2d(cin, wd, 3, padding=1), nn.Conv2d(wd, wd, 3, padding=1)]))
        top = wd if depth > 1 else w
        w_a, w_b = max(4, round(4 * width / 3)), max(4, round(2 * width / 3))
        self.dec_a = nn.Conv2d(top + c, w_a, 3, padding=1)
        self.dec_b = nn.Conv2d(w_a, w_b, 3, padding=1)
        self.out = nn.Conv2d(w_b, c, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.act = nn.LeakyReLU(0.1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        nn.init.xavier_normal_(self.out.weight)

    def _conv(self, conv: nn.Conv2d, x: Tensor) -> Tensor:
        return self.act(conv(self.drop(x)))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            mask = torch.ones_like(x[:, :1])
        f = self.unshuffle
        h, w = x.shape[-2:]
        if f > 1:
            pad = (0, (-w) % f, 0, (-h) % f)
            x = F.pixel_unshuffle(F.pad(x, pad, mode="replicate" if min(h, w) > 1 else "constant"), f)
            mask = F.pixel_unshuffle(F.pad(mask, pad, mode="constant", value=0.0), f)
        masked = x * mask
        n, m = self.enc0(masked, mask)
        n, m = self.enc1(self.act(n), m)
        n = self.act(n)
        skips = []
        for i, conv in enumerate(self.down):
            n = F.max_pool2d(n, 2, ceil_mode=True)
            m = F.max_pool2d(m, 2, ceil_mode=True)
            if i < self.depth - 1:
                skips.append(n)
            n, m = conv(n, m)
            n = self.act(n)
        for convs in self.up:
            skip = skips.pop()
            n = torch.cat([_upsample_to(n, skip), skip], 1)
            for conv in convs:
                n = self._conv(conv, n)
        if self.depth > 0:
            n = _upsample_to(n, masked)
        n = torch.cat([n, masked], 1)
        n = self._conv(self.dec_a, n)
        n = self._conv(self.dec_b, n)
        y = torch.sigmoid(self.out(self.drop(n)))
        if f > 1:
            y = F.pixel_shuffle(y, f)[..., :h, :w]
        return y
