"""Asymmetric mask scheme: masks, masked loss, R3, correlated noise, bad input."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import selfdenoise
from selfdenoise.core.errors import InputError
from selfdenoise.core.metrics import psnr
from selfdenoise.core.pixel_shuffle import pd_down
from selfdenoise.methods import registry
from selfdenoise.methods.asym_mask import (
    AsymMask,
    apply_complementary,
    complementary_masks,
    hide,
    mask_indices,
    masked_l1,
    r3_refine,
)
from selfdenoise.methods.contract import Batch


def box3(x):
    """3x3 mean of each channel (a stand-in network that uses only the neighbourhood)."""
    c = x.shape[1]
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), torch.full((c, 1, 3, 3), 1 / 9), groups=c)


@pytest.mark.parametrize("masks", [2, 3, 5])
def test_inference_masks_are_complementary_and_cover_every_pixel_once(masks):
    index = mask_indices((2, 3, 13, 9), masks, torch.Generator().manual_seed(1))
    hidden = complementary_masks(index, masks)
    assert len(hidden) == masks and hidden[0].shape == (2, 1, 13, 9)
    assert torch.equal(torch.stack(hidden).sum(0), torch.ones(2, 1, 13, 9, dtype=torch.long))
    # each hides about 1/n of the pixels (training hides mask 0: 50% with the default n = 2)
    assert all(abs(h.float().mean() - 1 / masks) < 0.15 for h in hidden)


def test_every_output_pixel_comes_from_the_pass_that_hid_it():
    x = torch.rand(1, 3, 11, 7) + 0.5
    # the identity network returns the masked input, i.e. 0 at the pixels it did not see
    assert torch.equal(apply_complementary(lambda z: z, x, 3), torch.zeros_like(x))
    # a network that sees the neighbourhood: each pixel equals the 3x3 mean of the other pixels of its pass
    gen = torch.Generator().manual_seed(4)
    out = apply_complementary(box3, x, 2, torch.Generator().manual_seed(4))
    hidden = complementary_masks(mask_indices(x.shape, 2, gen), 2)
    expected = sum(torch.where(h, box3(x * ~h), 0.0) for h in hidden)
    assert torch.allclose(out, expected)


@pytest.mark.parametrize("fill", ["zero", "mean"])
def test_loss_counts_only_the_masked_pixels(fill):
    method = AsymMask(masks=2, fill=fill)
    y = torch.rand(2, 3, 23, 17)
    batch = Batch(noisy=y, extra={"seeds": [3]})
    sub = pd_down(y, 5)
    hidden = mask_indices(sub.shape, 2, torch.Generator().manual_seed(3 + 7)) == 0  # the step's mask
    base = method.training_step(batch, lambda z: z, 0, 10)["loss"]
    changed = method.training_step(batch, lambda z: z + 7.0 * ~hidden, 0, 10)["loss"]  # only unmasked pixels
    assert torch.equal(base, changed)
    moved = method.training_step(batch, lambda z: z + 0.5 * hidden, 0, 10)["loss"]  # only masked pixels
    assert not torch.isclose(base, moved)
    assert torch.isclose(base, masked_l1(hide(sub, hidden, fill), sub, hidden))
    if fill == "zero":  # the identity map predicts 0 at the masked pixels: the loss is their mean value
        assert torch.isclose(base, sub[hidden.expand(-1, 3, -1, -1)].mean())


def test_a_masked_pixel_never_reaches_the_network():
    x = torch.rand(2, 3, 9, 11)
    hidden = mask_indices(x.shape, 2, torch.Generator().manual_seed(0)) == 0
    other = torch.where(hidden, torch.rand(x.shape), x)  # different values at the masked pixels only
    for fill in ("zero", "mean"):
        assert torch.equal(hide(x, hidden, fill), hide(other, hidden, fill))
        assert torch.equal(hide(x, hidden, fill)[~hidden.expand_as(x)], x[~hidden.expand_as(x)])


def test_r3_is_the_mean_over_random_replacements():
    y = torch.rand(1, 3, 10, 12)
    x = box3(y)
    out = r3_refine(box3, y, x, masks=2, steps=8, p=0.16, generator=torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    terms = []
    for _ in range(8):
        replace = torch.rand(1, 1, 10, 12, generator=gen) < 0.16
        terms.append(apply_complementary(box3, torch.where(replace, y, x), 2, gen))
    assert torch.allclose(out, torch.stack(terms).mean(0))
    # p = 0: nothing is replaced, the refinement only re-denoises the denoised image
    out0 = r3_refine(box3, y, x, masks=2, steps=3, p=0.0, generator=torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    again = []
    for _ in range(3):
        torch.rand(1, 1, 10, 12, generator=gen)
        again.append(apply_complementary(box3, x, 2, gen))
    assert torch.allclose(out0, torch.stack(again).mean(0))


def test_beats_the_noisy_input_on_spatially_correlated_noise():
    yy, xx = np.mgrid[0:47, 0:53].astype(np.float32)
    smooth = np.stack([0.5 + 0.3 * np.sin(xx / 4), 0.5 + 0.3 * np.cos(yy / 5), 0.3 + (xx + yy) / 250], -1)
    clean = torch.from_numpy(smooth).permute(2, 0, 1)[None]
    white = 60 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    noisy = clean + box3(white)  # 3x3-blurred Gaussian noise: neighbouring noise values are correlated
    # PD factor 3 separates pixels further apart than the 3x3 blur reaches
    method = AsymMask(widths=(16, 16, 16), train_factor=3, steps=40, crop=47, batch=4, lr=2e-3, r3_steps=4)
    out = method.fit_denoise(noisy, seed=0)
    hwc = lambda t: t[0].permute(1, 2, 0).clamp(0, 1).numpy()
    noisy_db, out_db = psnr(hwc(clean), hwc(noisy)), psnr(hwc(clean), hwc(out))
    assert out.shape == noisy.shape
    assert out_db > noisy_db + 1.5, (noisy_db, out_db)


@pytest.mark.parametrize("refine", [0, 1])
def test_denoise_is_deterministic_and_keeps_odd_and_gray_shapes(refine):
    method = AsymMask(widths=(8, 8, 8), r3_steps=2, refine=refine)
    for c, h, w in [(3, 37, 31), (1, 29, 42)]:
        model = method.build_model(c)
        y = torch.rand(1, c, h, w)
        a, b = method.denoise(model, y), method.denoise(model, y)
        assert a.shape == y.shape and torch.equal(a, b)
        if refine:  # the Wiener refinement changes the result
            assert not torch.equal(a, AsymMask(widths=(8, 8, 8), r3_steps=2).denoise(model, y))


def test_api_zero_shot_on_gray_and_colour_and_dataset_only_methods_still_refused(rgb):
    gray = selfdenoise.denoise(rgb.mean(-1), "asym-mask", steps=2, widths=(8, 8, 8), r3_steps=1)
    assert gray.shape == rgb.shape[:2] and gray.dtype == np.float32
    colour = selfdenoise.denoise(rgb, "asym-mask", budget=0.5, widths=(8, 8, 8), r3=False)
    assert colour.shape == rgb.shape and np.isfinite(colour).all()
    with pytest.raises(InputError, match="trained on a data set"):
        selfdenoise.denoise(rgb, "ne2ne")


def test_bad_input_gives_one_line_errors():
    with pytest.raises(InputError, match="at least 10x10"):
        AsymMask(steps=1).fit_denoise(torch.rand(1, 3, 9, 30))  # too small for pixel-shuffle factor 5
    method = AsymMask(widths=(8, 8, 8))
    with pytest.raises(InputError, match="at least 4x4"):
        method.denoise(method.build_model(3), torch.rand(1, 3, 3, 40))
    with pytest.raises(InputError, match="masks must be >= 2"):
        registry.get_method("asym-mask", masks=1)
    with pytest.raises(InputError, match="no option"):
        registry.get_method("asym-mask", sigma_map=True)
    with pytest.raises(InputError, match="refine is a number of passes"):
        registry.get_method("asym-mask", refine=-1)
    with pytest.raises(InputError, match="blend_window must be an odd"):
        registry.get_method("asym-mask", blend_window=4)
    with pytest.raises(InputError):
        selfdenoise.denoise(np.zeros((8, 8, 3), np.float32), "asym-mask", steps=1)


def test_noise_aware_blend_matches_the_formula_and_beats_both_inputs():
    from scipy.ndimage import uniform_filter

    from selfdenoise.methods.asym_mask import noise_aware_blend

    gen = torch.Generator().manual_seed(1)
    clean = torch.rand(1, 3, 41, 37, generator=gen)
    sigma, tau = 0.05, 0.03
    noisy = clean + sigma * torch.randn(clean.shape, generator=gen)
    blind = clean + tau * torch.randn(clean.shape, generator=gen)  # error independent of the noise
    out = noise_aware_blend(noisy, blind, sigma, window=5)
    d2 = uniform_filter(((blind - noisy) ** 2).mean(1)[0].numpy(), 5, mode="nearest")
    w = sigma**2 / (sigma**2 + np.maximum(d2 - sigma**2, 1e-10))
    expected = noisy[0].numpy() + w * (blind - noisy)[0].numpy()
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-5)
    mse = lambda t: float(((t - clean) ** 2).mean())
    assert mse(out) < min(mse(noisy), mse(blind))
    assert torch.equal(noise_aware_blend(noisy, blind, 0.0), blind)  # no noise: the prediction as is
