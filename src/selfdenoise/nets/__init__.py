"""Networks. ``build_net`` makes one by name, so model files can record just the name and options."""
from __future__ import annotations

from torch import nn

from ..core.errors import InputError
from .srresnet import SRResNet
from .unet_paper import UNetPaper
from .unet_small import UNetSmall

#: name -> what it is (for help texts and errors)
NETS = {
    "fast": "compact residual UNet on the 2x2 pixel-unshuffled image (nets.unet_small); the CPU default",
    "unet": "the Noise2Noise / Neighbor2Neighbor paper UNet, 48 features at full resolution (nets.unet_paper)",
    "srresnet": "SRResNet without up-sampling, 16 residual blocks of 64 features (nets.srresnet; Noise2Noise)",
}


def build_net(name: str, channels: int, widths: tuple[int, ...] | None = None) -> nn.Module:
    """The network ``name`` for ``channels``-channel images (input and output)."""
    if name == "fast":
        return UNetSmall(channels, tuple(widths) if widths else (48, 96, 144))
    if name == "unet":
        return UNetPaper(channels)
    if name == "srresnet":
        return SRResNet(channels)
    raise InputError(f"unknown network '{name}' (known: {', '.join(NETS)})")
