"""Pixel-shuffle down-sampling (PD) and its inverse, for any height and width.

PD with factor ``f`` (Zhou et al., AAAI 2020; used by AP-BSN, Lee et al. CVPR 2022, and the
asymmetric mask scheme, Liao et al. ECCV 2024) splits an image into ``f * f`` sub-images: sub-image
``(i, j)`` holds the pixels ``x[..., i::f, j::f]``. Neighbouring pixels of a sub-image are ``f``
pixels apart in the original, so spatially correlated noise (camera demosaicing, JPEG) becomes
nearly independent inside each sub-image.

Here the ``f * f`` sub-images are stacked along the batch axis (as the asymmetric-mask code does),
not tiled into one mosaic (AP-BSN): a network then never sees the seams between sub-images, so no
padding between them is needed. Sides that are not multiples of ``f`` are first reflect-padded at
the bottom/right (replicated where a side is too short to reflect); ``pd_up`` removes that padding,
so ``pd_up(pd_down(x, f), f, x.shape[-2:])`` is exactly ``x``.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def _pad_bottom_right(x: Tensor, ph: int, pw: int) -> Tensor:
    """Reflect-pad (B, C, H, W) by ``ph`` rows and ``pw`` columns; replicate where reflection would
    need more pixels than the side has."""
    h, w = x.shape[-2:]
    if ph:
        x = F.pad(x, (0, 0, 0, ph), mode="reflect" if ph < h else "replicate")
    if pw:
        x = F.pad(x, (0, pw, 0, 0), mode="reflect" if pw < w else "replicate")
    return x


def pd_down(x: Tensor, factor: int) -> Tensor:
    """(B, C, H, W) -> (B * f * f, C, ceil(H / f), ceil(W / f)); sub-image ``(i, j)`` of image ``b``
    is at batch index ``b * f * f + i * f + j`` and holds ``x[b, :, i::f, j::f]`` (after padding)."""
    f = int(factor)
    if f < 1:
        raise ValueError(f"pixel-shuffle factor must be >= 1, got {factor}")
    if x.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    if f == 1:
        return x
    b, c, h, w = x.shape
    x = _pad_bottom_right(x, (-h) % f, (-w) % f)
    hp, wp = x.shape[-2:]
    sub = x.reshape(b, c, hp // f, f, wp // f, f).permute(0, 3, 5, 1, 2, 4)
    return sub.reshape(b * f * f, c, hp // f, wp // f)


def pd_up(y: Tensor, factor: int, size: tuple[int, int]) -> Tensor:
    """Inverse of ``pd_down``: (B * f * f, C, h, w) -> (B, C, H, W) with ``(H, W) = size``."""
    f = int(factor)
    if f == 1:
        return y[..., : size[0], : size[1]]
    n, c, h, w = y.shape
    if n % (f * f):
        raise ValueError(f"batch {n} is not a multiple of factor^2 = {f * f}")
    b = n // (f * f)
    x = y.reshape(b, f, f, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(b, c, h * f, w * f)
    return x[..., : size[0], : size[1]]
