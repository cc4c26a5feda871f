"""The Noise2Void family: the stratified blind-spot manipulation (exact properties), the N2V2 network and
the structN2V mask, against the papers' definitions."""
import numpy as np
import pytest
import torch

from selfdenoise.core.errors import InputError
from selfdenoise.methods import registry
from selfdenoise.methods.n2v import blind_spot_batch, masked_positions, neighbourhood, struct_offsets
from selfdenoise.nets.unet_n2v import UNetN2V


def test_masked_positions_are_one_per_grid_cell_at_the_asked_density():
    gen = torch.Generator().manual_seed(0)
    pos = masked_positions(planes=3, h=101, w=87, percent=1.0, generator=gen)  # cells of 10x10 pixels
    assert pos[:, 0].unique().tolist() == [0, 1, 2]
    assert (pos[:, 1] < 101).all() and (pos[:, 2] < 87).all() and (pos >= 0).all()
    cells = {(int(p), int(y) // 10, int(x) // 10) for p, y, x in pos}
    assert len(cells) == len(pos)  # never two in one cell
    assert 3 * 10 * 8 <= len(pos) <= 3 * 11 * 9  # every full cell has one; border cells when inside
    density = len(pos) / (3 * 101 * 87)
    assert density == pytest.approx(0.01, rel=0.15)


@pytest.mark.parametrize("manipulation", ["uniform", "median"])
def test_only_the_masked_pixels_change_and_never_to_their_own_value(manipulation):
    x = torch.arange(2 * 3 * 30 * 26, dtype=torch.float32).reshape(2, 3, 30, 26)  # every value distinct
    out, mask = blind_spot_batch(x, percent=2.0, roi=5, manipulation=manipulation,
                                 generator=torch.Generator().manual_seed(1))
    assert mask.any() and torch.equal(out[~mask], x[~mask])
    assert (out[mask] != x[mask]).all()  # the network never sees a masked pixel's own value
    # each replacement comes from the same plane, within the 5x5 window (clamped at the borders)
    b, c, ys, xs = mask.nonzero().unbind(1)
    for k in range(len(b)):
        y, xx = int(ys[k]), int(xs[k])
        window = x[b[k], c[k], max(0, y - 2):y + 3, max(0, xx - 2):xx + 3]
        v = out[b[k], c[k], y, xx]
        if manipulation == "uniform":
            assert (window == v).any()
        else:
            others = window.flatten()[window.flatten() != x[b[k], c[k], y, xx]]
            assert others.min() <= v <= others.max()


def test_median_manipulation_is_the_median_of_the_neighbourhood_without_the_centre():
    x = torch.rand(1, 1, 15, 15, generator=torch.Generator().manual_seed(2))
    checked = 0
    for seed in range(20):
        out, mask = blind_spot_batch(x, percent=100 / 225, roi=5, manipulation="median",
                                     generator=torch.Generator().manual_seed(seed))
        (_, _, y, xx), = mask.nonzero().tolist()  # one cell of 225 pixels: one masked pixel
        if 2 <= y <= 12 and 2 <= xx <= 12:  # away from the border the window is exact
            window = x[0, 0, y - 2:y + 3, xx - 2:xx + 3].flatten()
            assert out[0, 0, y, xx] == torch.cat([window[:12], window[13:]]).median()
            checked += 1
    assert checked >= 5


def test_struct_mask_hides_a_line_with_values_in_the_crop_range():
    assert struct_offsets("horizontal", 5).tolist() == [[0, -2], [0, -1], [0, 1], [0, 2]]
    assert struct_offsets("vertical", 3).tolist() == [[-1, 0], [1, 0]]
    offsets = neighbourhood(5, struct_offsets("horizontal", 5))
    assert len(offsets) == 24 - 4 and not ((offsets[:, 0] == 0)).any()  # the line is never a replacement
    x = torch.rand(1, 1, 40, 40, generator=torch.Generator().manual_seed(4)) * 0.5 + 0.25
    out, mask = blind_spot_batch(x, percent=1.0, roi=5, struct=struct_offsets("horizontal", 5),
                                 generator=torch.Generator().manual_seed(5))
    changed = out != x
    _, _, ys, xs = mask.nonzero().unbind(1)
    for y, xx in zip(ys.tolist(), xs.tolist()):
        for dx in (-2, -1, 1, 2):
            if 0 <= xx + dx < 40 and not mask[0, 0, y, xx + dx]:
                assert changed[0, 0, y, xx + dx]
    assert (out >= x.min()).all() and (out <= x.max()).all()


@pytest.mark.parametrize("n2v2", [False, True])
def test_n2v_unet_any_size_and_n2v2_drops_the_top_skip(n2v2):
    torch.manual_seed(0)
    net = UNetN2V(1, (8, 16, 16), n2v2=n2v2)
    y = net(torch.rand(2, 1, 29, 35))
    assert y.shape == (2, 1, 29, 35) and torch.isfinite(y).all()
    top = net.up[-1][0]  # the first convolution of the full-resolution decoder block
    assert top.in_channels == (16 if n2v2 else 16 + 8)


def test_blur_pool_is_a_normalised_binomial_after_a_max():
    from selfdenoise.nets.unet_n2v import MaxBlurPool

    x = torch.ones(1, 2, 8, 8)
    assert torch.allclose(MaxBlurPool()(x)[..., 1:-1, 1:-1], torch.ones(1, 2, 2, 2))  # constant stays constant
    assert MaxBlurPool()(torch.rand(1, 2, 9, 7)).shape == (1, 2, 5, 4)


def test_options_are_checked_and_presets_differ_where_the_papers_do():
    assert registry.get_method("n2v2").manipulation == "median" and registry.get_method("n2v2").net == "n2v2"
    assert registry.get_method("n2v").manipulation == "uniform" and registry.get_method("n2v").net == "n2v"
    assert registry.get_method("struct-n2v").struct_axis == "horizontal"
    for bad in ({"roi": 4}, {"percent": 0}, {"manipulation": "mean"}, {"struct_axis": "diagonal"}, {"span": 2}):
        with pytest.raises(InputError):
            registry.get_method("n2v", **bad)
    with pytest.raises(InputError, match="struct_axis"):
        registry.get_method("struct-n2v", struct_axis="none")


def test_n2v2_fitted_on_one_image_denoises_it(natural):
    rng = np.random.default_rng(0)
    clean = natural[:64, :64].mean(-1)
    noisy = (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)
    from selfdenoise import api
    from selfdenoise.core.metrics import psnr

    # 5 % of the pixels masked: at the default 0.2 % a 48x48 crop holds about 4, too few for 150 small steps
    out = api.denoise(noisy, "n2v2", steps=150, widths=(16, 32, 32), batch=4, crop=48, lr=2e-3, percent=5.0)
    assert out.shape == noisy.shape
    assert psnr(clean, out) > psnr(clean, np.clip(noisy, 0, 1)) + 3.0
