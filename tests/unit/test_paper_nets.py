"""The two published networks: Neighbor2Neighbor U-Net and the Noise2Noise SRResNet."""
import pytest
import torch

from selfdenoise.nets.srresnet import SRResNet
from selfdenoise.nets.unet_paper import UNetPaper, pad_to_multiple


def conv(cin, cout, k=3):
    return cin * cout * k * k + cout


def unet_count(c, n=48):
    """The Neighbor2Neighbor ``arch_unet.UNet`` layer list, written out."""
    enc = conv(c, n) + 6 * conv(n, n)
    ups = conv(n, n, 2) + 4 * conv(2 * n, 2 * n, 2)  # 2x2 transposed convs, with bias
    dec = 2 * conv(2 * n, 2 * n) + 3 * (conv(3 * n, 2 * n) + conv(2 * n, 2 * n)) + conv(2 * n + c, 96) + conv(96, 96)
    out = 2 * conv(96, 96, 1) + conv(96, c, 1)
    return enc + ups + dec + out


def srresnet_count(c, f=64, blocks=16):
    return conv(c, f, 9) + blocks * 2 * conv(f, f) + conv(f, f) + conv(f, c, 9)


def nparams(m):
    return sum(p.numel() for p in m.parameters())


NETS = {"unet": UNetPaper, "srresnet": SRResNet}


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("shape", [(1, 3, 37, 45), (1, 1, 5, 7), (2, 3, 33, 64), (1, 3, 1, 40), (1, 1, 1, 1)])
def test_shape_preserved(name, shape):
    net = NETS[name](channels=shape[1]).eval()
    with torch.no_grad():
        y = net(torch.rand(shape))
    assert y.shape == shape
    assert torch.isfinite(y).all()


def test_parameter_counts():
    assert nparams(UNetPaper(3)) == unet_count(3) == 1_259_475
    assert nparams(UNetPaper(1)) == unet_count(1) == 1_256_689
    assert nparams(UNetPaper(3, features=32)) == unet_count(3, 32)
    assert nparams(SRResNet(3)) == srresnet_count(3) == 1_249_795
    assert nparams(SRResNet(1, 32, 4)) == srresnet_count(1, 32, 4)
    # published / quoted figures: "about 1.26 M" (N2N/Ne2Ne U-Net), SRResNet 16x64 about 1.25 M
    assert abs(nparams(UNetPaper()) - 1.26e6) < 0.01e6
    assert abs(nparams(SRResNet()) - 1.25e6) < 0.01e6


def test_no_batchnorm_in_srresnet():
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in SRResNet().modules())


@pytest.mark.parametrize("name", NETS)
def test_gradients_flow(name):
    torch.manual_seed(0)
    net = NETS[name]()
    x = torch.rand(2, 3, 40, 36)
    ((net(x) - x) ** 2).mean().backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NETS)
def test_channels_last(name):
    torch.manual_seed(0)
    net = NETS[name]().eval()
    x = torch.rand(1, 3, 37, 45)
    with torch.no_grad():
        ref = net(x)
        net = net.to(memory_format=torch.channels_last)
        y = net(x.to(memory_format=torch.channels_last))
    assert y.shape == x.shape
    assert torch.allclose(y, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


@pytest.mark.parametrize("name", NETS)
def test_deterministic_given_seed(name):
    x = torch.rand(1, 3, 33, 35)
    outs, states = [], []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        net = NETS[name]().eval()
        states.append(net.state_dict())
        with torch.no_grad():
            outs.append(net(x))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])


def test_pad_modes():
    x = torch.rand(1, 1, 5, 37)
    p = pad_to_multiple(x, 32)
    assert p.shape == (1, 1, 32, 64)
    assert torch.equal(p[..., :5, :37], x)
    assert torch.equal(p[..., 5:, :37], x[..., 4:5, :].expand(-1, -1, 27, -1))  # too short: replicate
    assert torch.equal(p[..., :5, 37:], x[..., :, 9:36].flip(-1))  # long enough: reflect
