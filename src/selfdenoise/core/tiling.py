"""Applying a network to images of any size: tiling with overlap and smooth blending."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

#: Above this many pixels per call, inference is tiled (roughly 100 MB of activations for small nets).
DEFAULT_TILE_PIXELS = 1024 * 1024


def _starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    return starts + [size - tile]


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> Tensor:
    w = torch.ones(n)
    if overlap > 0:
        r = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
        if not at_start:
            w[:overlap] = torch.minimum(w[:overlap], r)
        if not at_end:
            w[-overlap:] = torch.minimum(w[-overlap:], r.flip(0))
    return w


@torch.inference_mode()
def apply_tiled(fn: Callable[[Tensor], Tensor], x: Tensor, tile: int | None = None, overlap: int = 32,
                multiple: int = 1) -> Tensor:
    """Run ``fn`` on (B, C, H, W) ``x`` in overlapping tiles of ``tile`` x ``tile`` pixels, blended with
    linear ramps, so memory stays bounded. ``tile=None`` picks whole-image inference below
    ``DEFAULT_TILE_PIXELS`` and 512-pixel tiles above it. ``multiple``: tile sides are rounded to it
    (for networks that down-sample)."""
    b, c, h, w = x.shape
    if tile is None:
        if h * w <= DEFAULT_TILE_PIXELS:
            return fn(x)
        tile = 512
    tile = max(multiple, (int(tile) // multiple) * multiple)
    overlap = min(overlap, tile // 4)
    if h <= tile and w <= tile:
        return fn(x)
    th, tw = min(tile, h), min(tile, w)
    ys, xs = _starts(h, th, th - 2 * overlap or th), _starts(w, tw, tw - 2 * overlap or tw)
    out = None
    weight = torch.zeros(1, 1, h, w, dtype=x.dtype)
    for y in ys:
        wy = _ramp(th, overlap, y == 0, y + th >= h)
        for x0 in xs:
            wx = _ramp(tw, overlap, x0 == 0, x0 + tw >= w)
            piece = fn(x[:, :, y:y + th, x0:x0 + tw])
            if out is None:
                out = torch.zeros(b, piece.shape[1], h, w, dtype=piece.dtype)
            wgt = (wy[:, None] * wx[None, :])[None, None]
            out[:, :, y:y + th, x0:x0 + tw] += piece * wgt
            weight[:, :, y:y + th, x0:x0 + tw] += wgt
    return out.div_(weight)


def tta_apply(model: nn.Module, x: Tensor, n: int = 8, modes: tuple[int, ...] = tuple(range(8))) -> Tensor:
    """Average ``model`` over the first ``n`` of the flips/rotations ``modes`` of ``x`` (``core.augment.flip_rotate``'s
    ``k``: ``k % 4`` quarter turns, then a mirror if ``k >= 4``)."""
    acc = torch.zeros_like(x)
    modes = modes[:n]
    for k in modes:
        t = torch.rot90(x, k % 4, (-2, -1))
        if k >= 4:
            t = t.flip(-1)
        o = model(t.contiguous(memory_format=torch.channels_last))
        if k >= 4:
            o = o.flip(-1)
        acc += torch.rot90(o, -(k % 4), (-2, -1))
    return acc / len(modes)
