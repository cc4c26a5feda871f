"""A compact residual 3-D UNet for ZYX volumes, the volumetric counterpart of ``unet_small``.

The input (B, C, D, H, W) is padded in-plane to a multiple of 8, pixel-unshuffled by 2 in-plane (so the first
level runs at half the in-plane resolution, about 4x cheaper), passed through a three-level UNet of 3x3x3
convolutions and shuffled back; the network predicts a correction added to the input.

Down-sampling is in-plane only (average pooling 1x2x2, up-sampling by in-plane pixel shuffle), never along Z:
microscopy stacks are often anisotropic (planes further apart than pixels) and hold few planes, so halving Z
would merge planes that are far apart, blur the axis that is already the coarsest, and force the depth to a
multiple of 4 (padding a 7-plane stack to 8). With in-plane pooling any depth works, one plane included (the
network then acts as a 2-D one), and the Z context comes from the 3x3x3 kernels: 11 convolutions see 11 planes
on either side. Any D >= 1 and H, W >= 1 are accepted.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _block(cin: int, cout: int, n: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv3d(cin if i == 0 else cout, cout, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
    return nn.Sequential(*layers)


def _per_plane(fn, x: Tensor) -> Tensor:
    """``fn`` on every plane of (B, C, D, H, W) as a batch of 2-D images (B D, C, H, W): the 4-D form that
    ONNX export takes for pixel (un)shuffle."""
    b, d = x.shape[0], x.shape[2]
    y = fn(x.transpose(1, 2).reshape(b * d, x.shape[1], x.shape[3], x.shape[4]))
    return y.reshape(b, d, y.shape[1], y.shape[2], y.shape[3]).transpose(1, 2)


def unshuffle_planes(x: Tensor, r: int = 2) -> Tensor:
    """(B, C, D, H, W) -> (B, C r^2, D, H/r, W/r): ``pixel_unshuffle`` of every plane."""
    return _per_plane(lambda t: F.pixel_unshuffle(t, r), x)


def shuffle_planes(x: Tensor, r: int = 2) -> Tensor:
    """(B, C r^2, D, H, W) -> (B, C, D, H r, W r): ``pixel_shuffle`` of every plane."""
    return _per_plane(lambda t: F.pixel_shuffle(t, r), x)


def _pool(x: Tensor) -> Tensor:
    return F.avg_pool3d(x, (1, 2, 2))


class UNet3D(nn.Module):
    """Three-level 3-D UNet on the in-plane 2x2 pixel-unshuffled volume; ``widths`` are the channel counts
    at 1/2, 1/4 and 1/8 of the in-plane resolution (every level keeps all planes)."""

    #: in-plane side multiple (unshuffle by 2, then two poolings); Z needs none
    multiple = 8

    def __init__(self, channels: int = 1, widths: tuple[int, int, int] = (32, 64, 96), depth: int = 2):
        super().__init__()
        self.channels = channels
        self.widths = tuple(widths)
        self.depth = depth
        w0, w1, w2 = widths
        c4 = channels * 4
        self.enc0 = _block(c4, w0, depth)
        self.enc1 = _block(w0, w1, depth)
        self.mid = _block(w1, w2, depth)
        self.up1 = nn.Conv3d(w2, w1 * 4, 1)
        self.dec1 = _block(2 * w1, w1, depth)
        self.up0 = nn.Conv3d(w1, w0 * 4, 1)
        self.dec0 = _block(2 * w0, w0, depth)
        self.out = nn.Conv3d(w0, c4, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            mode = "reflect" if (h > ph and w > pw) else "replicate"
            xp = F.pad(x, (0, pw, 0, ph, 0, 0), mode=mode)
        else:
            xp = x
        e0 = self.enc0(unshuffle_planes(xp))
        e1 = self.enc1(_pool(e0))
        b = self.mid(_pool(e1))
        d1 = self.dec1(torch.cat([shuffle_planes(self.up1(b)), e1], 1))
        d0 = self.dec0(torch.cat([shuffle_planes(self.up0(d1)), e0], 1))
        y = xp + shuffle_planes(self.out(d0))
        return y[..., :h, :w]
