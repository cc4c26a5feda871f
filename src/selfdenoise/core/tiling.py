"""Applying a network to images of any size: tiling with overlap and smooth blending."""
from __future__ import annotations

import itertools
import math
from typing import Callable

import torch
from torch import Tensor, nn

#: Above this many pixels per call, inference is tiled (roughly 100 MB of activations for small nets).
DEFAULT_TILE_PIXELS = 1024 * 1024
#: The same for volumes, in voxels: the 3-D UNet on 4 M voxels holds about 0.8 GB of activations, and the
#: fewer, larger tiles repeat less of their 32-pixel overlaps (measured on a 128 x 512 x 512 volume on 2 cores:
#: 42 s at a 1.16 GB peak, against 76 s at 0.91 GB with 1 M voxels per call).
DEFAULT_TILE_VOXELS = 4 * 1024 * 1024
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


def _tile_sides(shape: tuple[int, ...], tile: int | None, overlap: int,
                multiple: int) -> list[tuple[int, int, int]] | None:
    """(tile, overlap, multiple) per spatial axis of an input of ``shape`` (Z first for a volume), or None when
    one call covers it. Without ``tile``: whole-image inference up to ``DEFAULT_TILE_PIXELS`` (a volume: up to
    ``DEFAULT_TILE_VOXELS``), else 512-pixel tiles, or for a volume square tiles of that many voxels over at most
    ``DEPTH_TILE`` planes."""
    spatial = shape[2:]
    depth = min(spatial[0], DEPTH_TILE) if len(shape) == 5 else 1
    if tile is None:
        if math.prod(spatial) <= (DEFAULT_TILE_PIXELS if len(shape) == 4 else DEFAULT_TILE_VOXELS):
            return None
        tile = 512 if len(shape) == 4 else math.isqrt(DEFAULT_TILE_VOXELS // depth)
    tile = max(multiple, (int(tile) // multiple) * multiple)
    overlap = min(overlap, tile // 4)
    sides = [(tile, overlap, multiple)] * 2
    if len(shape) == 5:
        sides.insert(0, (depth, min(DEPTH_OVERLAP, depth // 4), 1))
    return None if all(n <= t for n, (t, _, _) in zip(spatial, sides)) else sides


def _weight_sum(n: int, plan: tuple[int, list[int]], overlap: int) -> Tensor:
    """The sum of the ramps of ``plan``'s tiles at each of ``n`` positions."""
    t, starts = plan
    total = torch.zeros(n)
    for s in starts:
        total[s:s + t] += _ramp(t, overlap, s == 0, s + t >= n)
    return total


@torch.inference_mode()
def apply_tiled_volume(fn: Callable[[Tensor], Tensor], read: Callable[[tuple], Tensor], shape: tuple[int, ...],
                       emit: Callable[[int, int, Tensor], None], tile: int | None = None, overlap: int = 32,
                       multiple: int = 1) -> None:
    """``apply_tiled`` for a volume (B, C, D, H, W) of ``shape`` that need not fit in memory: ``read(region)``
    gives the input at a region (a tuple of slices), and ``emit(z0, z1, planes)`` receives the result's planes
    ``z0:z1`` in order, each once, as soon as no later Z run adds to them. Tiles and ramps are the in-memory
    ones (each run of ``DEPTH_TILE`` planes is tiled over Y, X; the runs are blended along Z), so the result is
    the same; memory holds one run of planes and its overlap with the next."""
    sides = _tile_sides(shape, tile, overlap, multiple)
    if sides is None:
        emit(0, shape[2], fn(read((slice(None),) * 5)))
        return
    plans = [_tiles(n, t, o, m) for n, (t, o, m) in zip(shape[2:], sides)]
    (depth, z_starts), (_, yx_overlap, _) = plans[0], sides[1]
    plane_weight = (_weight_sum(shape[3], plans[1], yx_overlap)[:, None]
                    * _weight_sum(shape[4], plans[2], yx_overlap)[None, :])
    z_weight = _weight_sum(shape[2], plans[0], sides[0][1])
    carry = None  # the weighted sum of the planes that the next run still adds to
    for k, z in enumerate(z_starts):
        run = None
        for y, x in itertools.product(plans[1][1], plans[2][1]):
            region = (slice(None), slice(None), slice(z, z + depth), slice(y, y + plans[1][0]),
                      slice(x, x + plans[2][0]))
            piece = fn(read(region))
            if run is None:
                run = torch.zeros(shape[0], piece.shape[1], depth, *shape[3:], dtype=piece.dtype, device=piece.device)
            ramp = (_ramp(plans[1][0], yx_overlap, y == 0, y + plans[1][0] >= shape[3])[:, None]
                    * _ramp(plans[2][0], yx_overlap, x == 0, x + plans[2][0] >= shape[4])[None, :])
            run[region[:2] + (slice(None),) + region[3:]] += piece * ramp.to(piece.device)
        z_ramp = _ramp(depth, sides[0][1], z == 0, z + depth >= shape[2])
        run.div_(plane_weight.to(run.device)).mul_(z_ramp.to(run.device)[:, None, None])
        if carry is not None:
            run[:, :, :len(carry[0, 0])] += carry
        end = z_starts[k + 1] if k + 1 < len(z_starts) else shape[2]  # planes no later run reaches
        emit(z, end, run[:, :, :end - z].div_(z_weight[z:end, None, None].to(run.device)))
        carry = run[:, :, end - z:].clone() if end < z + depth else None


@torch.inference_mode()
def apply_tiled(fn: Callable[[Tensor], Tensor], x: Tensor, tile: int | None = None, overlap: int = 32,
                multiple: int = 1) -> Tensor:
    """Run ``fn`` on (B, C, H, W) ``x`` in overlapping tiles of ``tile`` x ``tile`` pixels, blended with
    linear ramps, so memory stays bounded. ``tile=None`` picks whole-image inference below
    ``DEFAULT_TILE_PIXELS`` and 512-pixel tiles above it. ``multiple``: tile sides are rounded to it
    (for networks that down-sample). A volume (B, C, D, H, W) is tiled the same way over Y and X, and over
    Z in runs of ``DEPTH_TILE`` planes when it is deeper (its networks need no multiple along Z)."""
    if x.ndim == 5:
        out = []
        apply_tiled_volume(fn, lambda region: x[region], tuple(x.shape), lambda z0, z1, planes: out.append(planes),
                           tile, overlap, multiple)
        return out[0] if len(out) == 1 else torch.cat(out, 2)
    sides = _tile_sides(tuple(x.shape), tile, overlap, multiple)
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
