"""Fast checks of ``--method self2self`` (CPU, tiny odd-sized images)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from selfdenoise.core.errors import InputError
from selfdenoise.methods.contract import Batch
from selfdenoise.methods.self2self import Self2Self, masked_mse
from selfdenoise.nets.pconv_dropout import PartialConv2d, PConvDropoutNet

SMALL = {"width": 8, "depth": 2, "batch": 2, "crop": 16, "passes": 3}


def _pconv(cin=3, cout=4, seed=0):
    torch.manual_seed(seed)
    conv = PartialConv2d(cin, cout)
    with torch.no_grad():
        conv.bias.uniform_(-1, 1)
    return conv


def test_partial_conv_with_a_full_mask_is_a_plain_conv_inside():
    conv = _pconv()
    x = torch.randn(1, 3, 9, 11)
    out, new_mask = conv(x, torch.ones_like(x))
    plain = F.conv2d(x, conv.weight, conv.bias, padding=1)
    # inside, every window is fully covered: no renormalisation
    assert torch.allclose(out[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1], atol=1e-5)
    # at a corner only 4 of 9 taps fall on the image: zero-padded conv rescaled by 9/4
    corner = (plain[..., 0, 0] - conv.bias) * 9 / 4 + conv.bias
    assert torch.allclose(out[..., 0, 0], corner, atol=1e-5)
    assert torch.equal(new_mask, torch.ones(1, 1, 9, 11))


def test_partial_conv_matches_its_formula_by_hand():
    conv = _pconv(cin=2, cout=3, seed=1)
    x = torch.randn(1, 2, 5, 7)
    mask = (torch.rand(1, 2, 5, 7, generator=torch.Generator().manual_seed(2)) > 0.4).float()
    mask[..., 0:3, 0:3] = 0  # a hole the size of a window: output 0, mask 0 at (1, 1)
    with torch.no_grad():
        out, new_mask = conv(x, mask)
    xm = F.pad(x * mask, (1, 1, 1, 1))
    mp = F.pad(mask, (1, 1, 1, 1))
    weight, bias = conv.weight.detach(), conv.bias.detach()
    for i in range(5):
        for j in range(7):
            window, cover = xm[0, :, i : i + 3, j : j + 3], mp[0, :, i : i + 3, j : j + 3].sum()
            for o in range(3):
                want = 0.0 if cover == 0 else float((weight[o] * window).sum() * 18 / cover + bias[o])
                assert out[0, o, i, j].item() == pytest.approx(want, abs=1e-5)
            assert new_mask[0, 0, i, j].item() == float(cover > 0)
    assert new_mask[0, 0, 1, 1] == 0


def test_network_shapes_and_range_on_odd_sizes():
    for shape, f in [((2, 3, 37, 31), 1), ((1, 1, 13, 9), 2), ((1, 3, 5, 4), 1)]:
        net = PConvDropoutNet(shape[1], width=8, depth=3, unshuffle=f)
        x = torch.rand(shape)
        y = net(x, torch.ones_like(x))
        assert y.shape == x.shape and (y > 0).all() and (y < 1).all()


def test_masks_differ_per_channel_and_drop_about_p():
    method = Self2Self(p=0.3, batch=3, crop=40)
    batch = method.sample_batch(torch.rand(1, 3, 41, 45), torch.Generator().manual_seed(0))
    keep = batch.mask
    assert keep.shape == batch.noisy.shape == (3, 3, 40, 40)
    assert set(keep.unique().tolist()) == {0.0, 1.0}
    assert abs(1 - keep.mean().item() - 0.3) < 0.02
    assert not torch.equal(keep[:, 0], keep[:, 1]) and not torch.equal(keep[:, 1], keep[:, 2])
    assert not torch.equal(keep[0], keep[1])  # a fresh mask for every crop


class _Echo(torch.nn.Module):
    """A stand-in network whose output the test controls."""

    def __init__(self, out):
        super().__init__()
        self.out, self.w = out, torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, mask):
        return self.out + 0 * self.w


def test_loss_only_counts_dropped_pixels():
    method = Self2Self()
    y = torch.rand(2, 3, 7, 9)
    keep = (torch.rand(y.shape, generator=torch.Generator().manual_seed(1)) > 0.3).float()
    out = torch.rand(y.shape)
    batch = Batch(noisy=y, mask=keep)
    loss = method.training_step(batch, _Echo(out), 0, 1)["loss"]
    changed = out + 5 * keep * torch.randn(y.shape)  # change the output only where pixels were kept
    assert method.training_step(batch, _Echo(changed), 0, 1)["loss"].item() == pytest.approx(loss.item())
    dropped = 1 - keep
    assert loss.item() == pytest.approx((((out - y) ** 2) * dropped).sum().item() / dropped.sum().item(), rel=1e-5)
    assert method.training_step(batch, _Echo(out + 0.1 * dropped), 0, 1)["loss"] != loss
    assert masked_mse(out, y, torch.zeros_like(y)).item() == 0.0


def test_ensemble_is_the_mean_of_the_passes_drawn_from_the_seed_of_the_fit():
    """Each pass: a fresh Bernoulli mask (its own generator) and fresh decoder dropout (the global one), both
    seeded from ``_mask_seed``; the output is their mean, the same at every call."""
    method = Self2Self(**{**SMALL, "passes": 4})
    model = method.build_model(3)
    x = torch.rand(1, 3, 19, 23)
    method._mask_seed = 5
    mean = method.denoise(model, x)
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    model.train()
    with torch.no_grad():
        singles = []
        for _ in range(4):
            keep = (torch.rand(x.shape, generator=gen) >= method.p).float()
            as_run = (x * keep).contiguous(memory_format=torch.channels_last)  # dropout draws follow the layout
            singles.append(model(as_run, keep.contiguous(memory_format=torch.channels_last)))
    assert torch.allclose(mean, torch.stack(singles).mean(0), atol=1e-6)
    assert not torch.allclose(singles[0], singles[1])  # masks and dropout differ between passes
    assert torch.equal(method.denoise(model, x), mean)


def test_the_ensemble_runs_on_the_whole_image_or_on_tiles_of_the_given_size():
    """Every pass sees the whole image by default; with ``tile`` (e.g. the training crop's size) every pass runs on
    inputs no larger than it, blended into the whole image."""
    seen = []

    class Spy(nn.Module):
        def forward(self, x, keep):
            seen.append(tuple(x.shape[-2:]))
            return x

    x = torch.rand(1, 3, 37, 45)
    Self2Self(**{**SMALL, "passes": 2}).denoise(Spy(), x)
    assert seen == [(37, 45)] * 2
    seen.clear()
    out = Self2Self(**{**SMALL, "passes": 2, "tile": 16}).denoise(Spy(), x)
    assert out.shape == x.shape and len(seen) > 2 and max(max(s) for s in seen) <= 16


def test_fit_denoise_shapes_gray_rgb_tiny_and_deterministic():
    for shape in [(1, 3, 37, 31), (1, 1, 29, 42), (1, 3, 4, 5)]:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        a = Self2Self(steps=3, **SMALL).fit_denoise(x, seed=3)
        assert a.shape == x.shape and a.dtype == torch.float32 and torch.isfinite(a).all()
    b = Self2Self(steps=3, **SMALL).fit_denoise(x, seed=3)
    assert torch.equal(a, b)


def test_budget_is_roughly_respected():
    x = torch.rand(1, 3, 48, 40)
    method = Self2Self(budget=2.0, **{**SMALL, "passes": 10_000})
    t = time.perf_counter()
    out = method.fit_denoise(x)
    assert time.perf_counter() - t < 2.0 + 1.0
    assert out.shape == x.shape
    assert Self2Self(budget=0, **SMALL).fit_denoise(x).shape == x.shape


@pytest.mark.parametrize("bad", [torch.rand(3, 20, 20), torch.rand(1, 3, 3, 20),
                                 torch.full((1, 1, 9, 9), float("nan"))])
def test_bad_input_is_a_one_line_input_error(bad):
    with pytest.raises(InputError) as e:
        Self2Self(steps=1, **SMALL).fit_denoise(bad)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("options", [{"p": 1.0}, {"p": 0}, {"passes": 0}, {"budget": -1}, {"dropout": 1.0}])
def test_bad_options_are_input_errors(options):
    with pytest.raises(InputError):
        Self2Self(**options)


def test_public_api_gray_and_rgb(rgb):
    import selfdenoise

    for image in (rgb, rgb[..., 0]):
        out = selfdenoise.denoise(image, "self2self", budget=1.0, width=8, depth=2, passes=2)
        assert out.shape == image.shape and out.dtype == np.float32 and 0 <= out.min() <= out.max() <= 1
    with pytest.raises(InputError, match="no option"):
        selfdenoise.denoise(rgb, "self2self", sigma_guess=3)


def test_training_on_a_data_set_draws_the_masks_from_the_crop_seeds():
    """Crops from a data set come without masks: the loss masks them from their seed (a resumed run draws the
    same masks), and scores the dropped pixels only."""
    method = Self2Self(**SMALL)
    torch.manual_seed(0)
    model = method.build_model(3)
    y = torch.rand(2, 3, 16, 16)
    model.eval()  # no decoder dropout: the loss depends on the masks alone
    first = method.training_step(Batch(noisy=y, extra={"seeds": [4]}), model, 0, 1)["loss"]
    again = method.training_step(Batch(noisy=y, extra={"seeds": [4]}), model, 0, 1)["loss"]
    other = method.training_step(Batch(noisy=y, extra={"seeds": [5]}), model, 0, 1)["loss"]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_a_fit_started_from_a_trained_prior_is_that_model_before_any_step(tmp_path, rgb):
    """``denoise(init=)``: zero steps from a prior give exactly the prior's dropout ensemble (``--model``); steps
    move away from it; a prior of other channels or another method is refused, naming the file."""
    import selfdenoise
    from selfdenoise import api

    crops = [rgb, np.ascontiguousarray(rgb[::-1])]
    prior = api.train(crops, "self2self", tmp_path / "prior.sdm", steps=3, crop=16, batch=2, width=8, depth=2,
                      passes=2)
    options = {"width": 8, "depth": 2, "passes": 2}
    start = selfdenoise.denoise(rgb, "self2self", init=prior.path, steps=0, **options)
    assert np.array_equal(start, api.load_model(prior.path).denoise(rgb))
    moved = selfdenoise.denoise(rgb, "self2self", init=prior.path, steps=3, **options)
    assert moved.shape == start.shape and not np.array_equal(moved, start)
    with pytest.raises(InputError, match="prior.sdm.*channel"):
        selfdenoise.denoise(rgb[..., 0], "self2self", init=prior.path, steps=1, **options)
    with pytest.raises(InputError, match="prior.sdm.*network differs"):
        selfdenoise.denoise(rgb, "self2self", init=prior.path, steps=1, width=16, depth=2)
    with pytest.raises(InputError, match="init"):
        selfdenoise.denoise(rgb, "nlm", init=prior.path)
    with pytest.raises(InputError, match="init"):
        selfdenoise.denoise(rgb, model=prior.path, init=prior.path)


def test_the_fitting_loop_calls_on_step_after_each_step_and_stops_when_it_says_so():
    from selfdenoise.methods.fitting import fit_single_image

    seen = []
    x = torch.rand(1, 3, 20, 20)
    fit_single_image(Self2Self(**SMALL), x, seconds=float("inf"), on_step=lambda step, model: seen.append(step) or step == 4)
    assert seen == [1, 2, 3, 4]
    seen.clear()
    fit_single_image(Self2Self(**SMALL), x, steps=3, on_step=lambda step, model: seen.append(step))
    assert seen == [1, 2, 3]
