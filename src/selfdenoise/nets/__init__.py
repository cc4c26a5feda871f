"""Networks. ``build_net`` makes one by name, so model files can record just the name and options."""
from __future__ import annotations

from torch import nn

from ..core.errors import InputError
from .srresnet import SRResNet
from .unet3d import UNet3D
from .unet_n2v import UNetN2V
from .unet_paper import UNetPaper
from .unet_small import UNetSmall

#: name -> what it is (for help texts and errors)
NETS = {
    "fast": "compact residual UNet on the 2x2 pixel-unshuffled image (nets.unet_small); the CPU default",
    "unet": "the Noise2Noise / Neighbor2Neighbor paper UNet, 48 features at full resolution (nets.unet_paper)",
    "srresnet": "SRResNet without up-sampling, 16 residual blocks of 64 features (nets.srresnet; Noise2Noise)",
    "n2v": "Noise2Void's UNet: batch-normalised levels of 32/64/128 features, max pooling (nets.unet_n2v)",
    "n2v2": "N2V2's UNet: max-blur pooling and no top-level skip connection (nets.unet_n2v)",
    "unet3d": "compact residual 3-D UNet on ZYX volumes, in-plane pooling only (nets.unet3d); for volume methods",
}
#: the networks that take volumes (B, C, D, H, W) rather than images (B, C, H, W)
VOLUME_NETS = ("unet3d",)


def build_net(name: str, channels: int, widths: tuple[int, ...] | None = None) -> nn.Module:
    """The network ``name`` for ``channels``-channel images (input and output); volumes for ``VOLUME_NETS``."""
    if name == "fast":
        return UNetSmall(channels, tuple(widths) if widths else (48, 96, 144))
    if name == "unet":
        return UNetPaper(channels)
    if name == "srresnet":
        return SRResNet(channels)
    if name in ("n2v", "n2v2"):
        return UNetN2V(channels, tuple(widths) if widths else (32, 64, 128), n2v2=name == "n2v2")
    if name == "unet3d":
        return UNet3D(channels, tuple(widths) if widths else (32, 64, 96))
    raise InputError(f"unknown network '{name}' (known: {', '.join(NETS)})")
