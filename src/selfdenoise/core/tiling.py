"""Applying a network to images of any size: tiling with overlap and smooth blending."""
from __future__ import annotations

import itertools
import math
from typing import Callable

import torch
from torch import Tensor, nn

#: Above this many pixels per call, inference is tiled (roughly 100 MB of activations for small nets).
DEFAULT_TILE_PIXELS = 1024 * 1024
#: Volumes (B, C, D, H, W) deeper than this are also tiled along Z, with ``DEPTH_OVERLAP`` planes of overlap.
DEPTH_TILE = 64
DEPTH_OVERLAP = 8


def channels_last(t: Tensor) -> Tensor:
    """``t`` in the channels-last layout of its rank: (B, C, H, W), or (B, C, D, H, W) volumes."""
    return t.contiguous(memory_format=torch.channels_last_3d if t.ndim == 5 else torch.channels_last)


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


def _tile_sides(x: Tensor, tile: int | None, overlap: int, multiple: int) -> list[tuple[int, int, int]] | None:
    """(tile, overlap, multiple) per spatial axis of ``x`` (Z first for a volume), or None when one call
    covers it. Without ``tile``: whole-image inference up to ``DEFAULT_TILE_PIXELS`` (voxels for a volume),
    else 512-pixel tiles, or for a volume square tiles of that many voxels over at most ``DEPTH_TILE`` planes."""
    spatial = x.shape[2:]
    depth = min(spatial[0], DEPTH_TILE) if x.ndim == 5 else 1
    if tile is None:
        if math.prod(spatial) <= DEFAULT_TILE_PIXELS:
            return None
        tile = 512 if x.ndim == 4 else math.isqrt(DEFAULT_TILE_PIXELS // depth)
    tile = max(multiple, (int(tile) // multiple) * multiple)
    overlap = min(overlap, tile // 4)
    sides = [(tile, overlap, multiple)] * 2
    if x.ndim == 5:
        sides.insert(0, (depth, min(DEPTH_OVERLAP, depth // 4), 1))
    return None if all(n <= t for n, (t, _, _) in zip(spatial, sides)) else sides


@torch.inference_mode()
def apply_tiled(fn: Callable[[Tensor], Tensor], x: Tensor, tile: int | None = None, overlap: int = 32,
                multiple: int = 1) -> Tensor:
    """Run ``fn`` on (B, C, H, W) ``x`` in overlapping tiles of ``tile`` x ``tile`` pixels, blended with
    linear ramps, so memory stays bounded. ``tile=None`` picks whole-image inference below
    ``DEFAULT_TILE_PIXELS`` and 512-pixel tiles above it. ``multiple``: tile sides are rounded to it
    (for networks that down-sample). A volume (B, C, D, H, W) is tiled the same way over Y and X, and over
    Z in runs of ``DEPTH_TILE`` planes when it is deeper (its networks need no multiple along Z)."""
    sides = _tile_sides(x, tile, overlap, multiple)
    if sides is None:
        return fn(x)
    spatial = x.shape[2:]
    plans = [_tiles(n, t, o, m) for n, (t, o, m) in zip(spatial, sides)]
    out = None
    weight = torch.zeros(1, 1, *spatial, dtype=x.dtype, device=x.device)
    for starts in itertools.product(*(s for _, s in plans)):
        region = (slice(None), slice(None), *(slice(s, s + t) for s, (t, _) in zip(starts, plans)))
        ramps = [_ramp(t, o, s == 0, s + t >= n) for s, (t, _), n, (_, o, _) in zip(starts, plans, spatial, sides)]
        piece = fn(x[region])
        if out is None:
            out = torch.zeros(x.shape[0], piece.shape[1], *spatial, dtype=piece.dtype, device=piece.device)
        wgt = math.prod(r.view(*[-1 if k == a else 1 for k in range(len(ramps))]) for a, r in enumerate(ramps))
        wgt = wgt[None, None].to(x.device)
        out[region] += piece * wgt
        weight[region] += wgt
    return out.div_(weight)


def tta_apply(model: nn.Module, x: Tensor, n: int = 8, modes: tuple[int, ...] = tuple(range(8))) -> Tensor:
    """Average ``model`` over the first ``n`` of the flips/rotations ``modes`` of ``x`` (``core.augment.flip_rotate``'s
    ``k``: ``k % 4`` quarter turns, then a mirror if ``k >= 4``); a volume's planes turn together."""
    acc = torch.zeros_like(x)
    modes = modes[:n]
    for k in modes:
        t = torch.rot90(x, k % 4, (-2, -1))
        if k >= 4:
            t = t.flip(-1)
        o = model(channels_last(t))
        if k >= 4:
            o = o.flip(-1)
        acc += torch.rot90(o, -(k % 4), (-2, -1))
    return acc / len(modes)
