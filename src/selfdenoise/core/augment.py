"""Flips, rotations and random crops of (C, H, W) / (1, C, H, W) tensors, for training and test-time
augmentation."""
from __future__ import annotations

import torch
from torch import Tensor

from .errors import InputError

#: The flip/rotation modes (``flip_rotate``'s ``k``) that each ``augment`` setting of a method draws from in
#: training and averages over at test time, in that order. ``flips`` keeps the axes (mirrors only): for
#: images with a preferred orientation and anisotropic noise, such as OCT B-scans.
AUGMENT_MODES = {"dihedral": (0, 1, 2, 3, 4, 5, 6, 7), "flips": (0, 4, 6, 2), "none": (0,)}


def augment_modes(name: str, owner: str = "") -> tuple[int, ...]:
    """The modes of augmentation setting ``name``; a one-line ``InputError`` for an unknown one."""
    if name not in AUGMENT_MODES:
        raise InputError(f"{owner + ': ' if owner else ''}unknown augment '{name}' (choose from: "
                         f"{', '.join(AUGMENT_MODES)})")
    return AUGMENT_MODES[name]


def flip_rotate(x: Tensor, k: int) -> Tensor:
    """Flip/rotation ``k`` (0..7) of a (C, H, W) crop: rotate by ``k % 4`` quarter turns, then mirror if ``k >= 4``."""
    x = torch.rot90(x, k % 4, (-2, -1))
    return (x.flip(-1) if k >= 4 else x).contiguous()


def random_crops(image: Tensor, count: int, height: int, width: int, generator: torch.Generator,
                 flips: bool = True) -> Tensor:
    """``count`` random ``height`` x ``width`` crops of one image (1, C, H, W), or of images drawn at random
    from a stack (N, C, H, W), stacked channels_last; with ``flips`` each is also flipped/rotated
    (``flip_rotate``; rotated non-square crops are turned back to one orientation). Draws per crop: the
    image (only when N > 1), row, column, then the flip mode."""
    n, _, h, w = image.shape
    crops = []
    for _ in range(count):
        k = int(torch.randint(0, n, (1,), generator=generator)) if n > 1 else 0
        i = int(torch.randint(0, h - height + 1, (1,), generator=generator))
        j = int(torch.randint(0, w - width + 1, (1,), generator=generator))
        crop = image[k, :, i : i + height, j : j + width]
        if flips:
            crop = flip_rotate(crop, int(torch.randint(0, 8, (1,), generator=generator)))
            crop = crop if crop.shape[-2] == height else crop.transpose(-2, -1)
        crops.append(crop)
    return torch.stack(crops).contiguous(memory_format=torch.channels_last)
