"""Applying a network to images of any size: tiling with overlap and smooth blending."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

#: Above this many pixels per call, inference is tiled (roughly 100 MB of activations for small nets).
DEFAULT_TILE_PIXELS = 1024 * 1024


def _tiles(size: int, tile: int, overlap: int, multiple: int = 1) -> tuple[int, list[int]]:
    """(tile length, starts) covering ``size``: as few tiles of at most ``tile`` as overlaps of at least
    ``2 * overlap`` allow, shrunk to share the length evenly (4032 pixels: 5 tiles of 864, not of 1024)."""
    if size <= tile:
        return size, [0]
    inner = tile - 2 * overlap
    n = -(-(size - 2 * overlap) // inner)
    t = min(tile, -(-(-(-(size - 2 * overlap) // n) + 2 * overlap) // multiple) * multiple)
    return t, sorted({round(i * (size - t) / (n - 1)) for i in range(n)})


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
    (th, ys), (tw, xs) = _tiles(h, tile, overlap, multiple), _tiles(w, tile, overlap, multiple)
    out = None
    weight = torch.zeros(1, 1, h, w, dtype=x.dtype, device=x.device)
    for y in ys:
        wy = _ramp(th, overlap, y == 0, y + th >= h)
        for x0 in xs:
            wx = _ramp(tw, overlap, x0 == 0, x0 + tw >= w)
            piece = fn(x[:, :, y:y + th, x0:x0 + tw])
            if out is None:
                out = torch.zeros(b, piece.shape[1], h, w, dtype=piece.dtype, device=piece.device)
            wgt = (wy[:, None] * wx[None, :])[None, None].to(x.device)
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
