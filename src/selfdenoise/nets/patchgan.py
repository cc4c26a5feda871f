"""PatchGAN discriminator (Isola et al. 2017) in the variant of TCFL: four stride-2 4x4 convolutions
(``features``, 2x, 4x, 8x channels; instance norm after all but the first; leaky ReLU 0.2), then a
4x4 convolution to one score per patch. A (H, W) input gives about (H/16, W/16) scores; sides
below 32 pixels are padded by edge replication first (instance norm needs 2x2 maps at the end)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

MIN_SIDE = 32


class PatchGAN(nn.Module):
    def __init__(self, channels: int = 1, features: int = 64):
        super().__init__()
        widths = [features, 2 * features, 4 * features, 8 * features]
        layers: list[nn.Module] = []
        cin = channels
        for k, cout in enumerate(widths):
            layers.append(nn.Conv2d(cin, cout, 4, stride=2, padding=1))
            if k > 0:
                layers.append(nn.InstanceNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = cout
        layers += [nn.ZeroPad2d((1, 0, 1, 0)), nn.Conv2d(cin, 1, 4, padding=1, bias=False)]
        self.layers = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if min(h, w) < MIN_SIDE:
            x = F.pad(x, (0, max(0, MIN_SIDE - w), 0, max(0, MIN_SIDE - h)), mode="replicate")
        return self.layers(x)
