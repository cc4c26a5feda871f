"""Collaborative Wiener filtering: transforms, block matching and aggregation against slow references."""
import numpy as np
import pytest
import torch
from scipy.fft import dct
from scipy.ndimage import uniform_filter

from selfdenoise.classical import wiener
from selfdenoise.classical.wiener import (
    Grouping,
    blend_bands,
    collaborative_wiener,
    dct_matrix,
    haar_matrix,
    opponent_matrix,
)
from selfdenoise.core.errors import InputError
from selfdenoise.methods.zero_shot import ZeroShot


def test_transforms_are_orthonormal_and_match_scipy():
    for n in (1, 5, 8, 16):
        d = dct_matrix(n)
        torch.testing.assert_close(d @ d.T, torch.eye(n), atol=1e-5, rtol=0)
        x = np.random.default_rng(n).standard_normal(n)
        np.testing.assert_allclose((d.double() @ torch.from_numpy(x)).numpy(), dct(x, norm="ortho"), atol=1e-5)
    m = opponent_matrix()
    torch.testing.assert_close(m @ m.T, torch.eye(3), atol=1e-6, rtol=0)
    for n in (1, 2, 8, 32):
        h = haar_matrix(n)
        torch.testing.assert_close(h @ h.T, torch.eye(n), atol=1e-6, rtol=0)
        torch.testing.assert_close(h[0], torch.full((n,), n**-0.5))  # the first row averages the group
    with pytest.raises(ValueError):
        haar_matrix(6)


def slow_sliding_wiener(y, p, sigma, patch, beta=0.0):
    """Reference: every patch position (group of one), 2-D DCT Wiener gains from the pilot, estimates
    weighted by 1 / (sigma^2 sum gain^2) times a Kaiser window (numpy's) and averaged where they overlap.
    One channel, numpy loops."""
    h, w = y.shape
    d = dct_matrix(patch).double().numpy()
    k = np.outer(np.kaiser(patch, beta), np.kaiser(patch, beta))
    num, den = np.zeros((h, w)), np.zeros((h, w))
    for i in range(h - patch + 1):
        for j in range(w - patch + 1):
            cy = d @ y[i:i + patch, j:j + patch] @ d.T
            cp = d @ p[i:i + patch, j:j + patch] @ d.T
            gain = cp**2 / (cp**2 + sigma**2)
            weight = 1.0 / (sigma**2 * (gain**2).sum())
            num[i:i + patch, j:j + patch] += weight * k * (d.T @ (gain * cy) @ d)
            den[i:i + patch, j:j + patch] += weight * k
    return num / den


@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_without_matching_it_is_the_sliding_window_dct_wiener_filter(beta):
    rng = np.random.default_rng(0)
    clean = np.add.outer(np.sin(np.arange(13) / 2), np.cos(np.arange(11) / 3)) / 4 + 0.5
    y = clean + 0.1 * rng.standard_normal(clean.shape)
    p = clean + 0.02 * rng.standard_normal(clean.shape)
    out = collaborative_wiener(torch.tensor(y[None]).float(), torch.tensor(p[None]).float(), 0.1, patch=4, step=1,
                               group=1, kaiser=beta)
    np.testing.assert_allclose(out[0].numpy(), slow_sliding_wiener(y, p, 0.1, 4, beta), atol=1e-5)


def test_bm3d_grouping_keeps_powers_of_two_of_the_matches_within_the_threshold():
    dist = torch.tensor([[0.0, 0.1, 0.2, 0.3, 0.9, 1.0, 2.0, 3.0],
                         [0.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0],
                         [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1]])
    assert Grouping(threshold=1.0).sizes(dist).tolist() == [4, 1, 8]  # 6 within: 4; only itself: 1; all 8
    assert Grouping().sizes(dist).tolist() == [8, 8, 8]
    assert Grouping(transform="haar").sizes(dist[:, :6]).tolist() == [4, 4, 4]  # Haar: a power of 2
    small = collaborative_wiener(torch.rand(1, 9, 10), torch.rand(1, 9, 10), 0.1, window=3, group=16,
                                 transform="haar")  # 2x3 patch positions in all: groups of 4
    assert small.shape == (1, 9, 10) and torch.isfinite(small).all()


@pytest.mark.parametrize("transform", ["dct", "haar"])
def test_a_vanishing_shrinkage_gives_the_noisy_image_back(transform):
    """Gain 1 everywhere: every transform is inverted exactly and the aggregation averages copies of ``y``."""
    g = torch.Generator().manual_seed(3)
    y, p = torch.rand(3, 21, 19, generator=g), torch.rand(3, 21, 19, generator=g)
    out = collaborative_wiener(y, p, 0.1, window=9, group=8, transform=transform, kaiser=2.0, shrinkage=1e-9,
                               threshold=0.05)
    torch.testing.assert_close(out, y, atol=1e-4, rtol=0)


@pytest.mark.parametrize("step, radius, pairs", [(4, 2, wiener.MATCH_PAIRS), (2, 5, wiener.MATCH_PAIRS), (1, 3, 500)])
def test_block_matching_finds_the_nearest_patches_in_the_window(monkeypatch, step, radius, pairs):
    """Against a brute-force search, with one reference per block, blocks of several references reaching the
    borders, and blocks cut down by ``MATCH_PAIRS``."""
    monkeypatch.setattr(wiener, "MATCH_PAIRS", pairs)
    rng = np.random.default_rng(1)
    lum = rng.random((17, 14)).astype(np.float32)
    patch, group = 3, 4
    t2 = torch.kron(dct_matrix(patch), dct_matrix(patch))
    pdct = wiener._patch_dct(torch.from_numpy(lum)[None], patch, t2)
    hp, wp = 17 - patch + 1, 14 - patch + 1
    rows, cols = wiener._grid(17, patch, step), wiener._grid(14, patch, step)
    # all DCT coefficients as features: the distance is the exact sum of squared differences
    got, dist = wiener._match(pdct, hp, wp, rows, cols, radius, group, features=patch, patch=patch)
    k = 0
    for r in rows.tolist():
        for c in cols.tolist():
            ref = lum[r:r + patch, c:c + patch]
            cands = sorted((float(((lum[a:a + patch, b:b + patch] - ref) ** 2).sum()), a * wp + b)
                           for a in range(max(0, r - radius), min(hp, r + radius + 1))
                           for b in range(max(0, c - radius), min(wp, c + radius + 1)))
            assert got[k, 0] == r * wp + c and dist[k, 0] == 0  # the reference itself first
            assert sorted(got[k].tolist()) == sorted(pos for _, pos in cands[:group])
            np.testing.assert_allclose(dist[k, 1:], [d / patch**2 for d, _ in cands[1:group]], atol=1e-5)
            k += 1


@pytest.mark.parametrize("channels", [1, 3])
def test_a_good_pilot_gives_a_better_image_than_pilot_and_noisy_input(natural, channels):
    clean = torch.from_numpy(natural).permute(2, 0, 1)[:channels].contiguous()[:, :45, :53]  # odd sizes
    gen = torch.Generator().manual_seed(0)
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=gen)
    pilot = clean + 12 / 255 * torch.randn(clean.shape, generator=gen)  # a pilot with its own, weaker errors
    out = collaborative_wiener(noisy, pilot, 25 / 255, window=9)
    mse = lambda t: float(((t - clean) ** 2).mean())
    assert out.shape == clean.shape and torch.isfinite(out).all()
    assert mse(out) < 0.8 * mse(pilot) < 0.8 * mse(noisy)
    blind = collaborative_wiener(noisy, pilot, None, window=9, passes=2)  # level from noisy - pilot
    assert mse(blind) < mse(pilot)


def test_tiny_images_and_bad_shapes():
    out = collaborative_wiener(torch.rand(3, 5, 6), torch.rand(3, 5, 6), 0.1)  # smaller than a patch
    assert out.shape == (3, 5, 6) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="one shape"):
        collaborative_wiener(torch.rand(3, 8, 8), torch.rand(3, 8, 9))


def blurred_noise(shape, gen):
    """Spatially correlated noise: white noise through a 3x3 box filter, rescaled to unit std."""
    n = torch.nn.functional.avg_pool2d(torch.randn(1, *shape, generator=gen), 3, 1, 1, count_include_pad=False)[0]
    return n / n.std()


def test_auto_refinement_runs_on_white_noise_and_not_on_correlated_noise(natural):
    clean = torch.from_numpy(natural).permute(2, 0, 1)[None]
    gen = torch.Generator().manual_seed(3)
    white = clean + 10 / 255 * torch.randn(clean.shape, generator=gen)
    correlated = clean + 10 / 255 * blurred_noise(clean.shape[1:], gen)[None]
    assert wiener.whiteness_ratio(white) < wiener.WHITE_RATIO < wiener.whiteness_ratio(correlated)
    assert wiener.resolve_passes("auto", white) == wiener.AUTO_PASSES
    assert wiener.resolve_passes("auto", correlated) == 0
    assert wiener.resolve_passes(1, correlated) == 1
    assert wiener.resolve_passes("auto", torch.rand(1, 3, 2, 5)) == wiener.AUTO_PASSES  # too small to tell
    assert [wiener.check_passes(v) for v in (0, 3, 2.0, "auto")] == [0, 3, 2, "auto"]
    for bad in (-1, 1.5, "two", True, None):
        with pytest.raises(InputError, match="refine"):
            wiener.check_passes(bad)
    with pytest.raises(InputError, match="zero-shot: refine"):
        ZeroShot(refine=-2)


def test_the_refinement_passes_its_matching_window_and_features_through(natural):
    clean = torch.from_numpy(natural[:29, :31]).permute(2, 0, 1)[None]
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(4))
    pilot = clean + 0.02
    std = 0.1
    for match in ({"window": 1}, {"window": 9, "features": 2}):
        got = wiener.refine_auto(noisy, pilot, 1, sigma=std, **match)
        var = wiener.removed_variance(torch.einsum("ij,jhw->ihw", wiener.colour_matrix(3), (noisy - pilot)[0]))
        want = collaborative_wiener(noisy[0], pilot[0], var.clamp_min(std**2).sqrt(), **match)
        torch.testing.assert_close(got[0], want)
    assert not torch.allclose(wiener.refine_auto(noisy, pilot, 1, sigma=std, window=1),
                              wiener.refine_auto(noisy, pilot, 1, sigma=std, window=9))
    with pytest.raises(InputError, match="refine_window"):
        ZeroShot(refine_window=0)
    for bad in ({"refine_patch": 0}, {"refine_group": 0}, {"refine_step": 0}, {"refine_kaiser": -1},
                {"refine_low_weight": 1.5}):
        with pytest.raises(InputError, match=next(iter(bad))):
            ZeroShot(**bad)


def test_blend_bands_gives_the_low_frequencies_their_own_share():
    g = torch.Generator().manual_seed(3)
    estimate, refined = torch.rand(1, 3, 23, 30, generator=g), torch.rand(1, 3, 23, 30, generator=g)
    torch.testing.assert_close(blend_bands(refined, estimate, 0.7), 0.7 * refined + 0.3 * estimate)
    torch.testing.assert_close(blend_bands(refined, estimate, 0.7, 0.7), 0.7 * refined + 0.3 * estimate)
    assert blend_bands(refined, estimate, 1.0) is refined and blend_bands(refined, estimate, 1.0, 1.0) is refined
    # a constant difference is all low frequency: it gets the low share exactly, everywhere
    torch.testing.assert_close(blend_bands(estimate + 0.2, estimate, 0.8, 0.4), estimate + 0.4 * 0.2)
    # a checkerboard (the highest frequency) keeps little low frequency: it gets nearly the high share
    board = 0.2 * (torch.arange(23)[:, None] + torch.arange(30)[None]).remainder(2).float()
    board = board - board.mean()
    got = blend_bands(estimate + board, estimate, 0.8, 0.4) - estimate
    assert float((got - 0.8 * board).abs().max()) < 0.05 * 0.2
    # the blur's scale: a smooth 1-D ramp's interior is low frequency too
    ramp = torch.linspace(0, 0.3, 30).expand(1, 3, 23, 30)
    torch.testing.assert_close((blend_bands(estimate + ramp, estimate, 0.8, 0.4) - estimate)[..., 4:-4],
                               0.4 * ramp[..., 4:-4], atol=1e-5, rtol=0)


def test_signal_dependent_noise_is_refined_through_the_anscombe_transform():
    """Poisson-Gaussian noise: ``vst=None`` fits the model and refines in the VST domain (exactly
    ``refine_through_vst`` with that model), which beats the white-noise refinement; Gaussian noise stays plain."""
    from skimage import data

    from selfdenoise.classical.baselines import nlm
    from selfdenoise.classical.noise_level import poisson_gaussian_model
    from selfdenoise.core.metrics import psnr

    clean = data.camera()[100:228, 100:228].astype(np.float64) / 255
    rng = np.random.default_rng(0)
    noisy = (rng.poisson(clean * 10) / 10 + rng.normal(0, 0.01, clean.shape)).astype(np.float32)
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]  # noqa: E731
    x, pilot = as_tensor(noisy), as_tensor(nlm(noisy))
    model = poisson_gaussian_model(noisy)
    assert model is not None and 0.05 < model[0] < 0.2  # the gain of Poisson(10 y) / 10 is 0.1
    auto = wiener.refine_auto(x, pilot, 1, vst=None)
    torch.testing.assert_close(auto, wiener.refine_through_vst(x, pilot, 1, model))
    plain = wiener.refine_auto(x, pilot, 1, vst=False)
    score = lambda t: psnr(clean, t[0, 0].clamp(0, 1).numpy())  # noqa: E731
    assert score(auto) > score(plain) + 0.05 > score(pilot) + 0.5, (score(pilot), score(plain), score(auto))
    gaussian = as_tensor(clean + rng.normal(0, 0.1, clean.shape))
    assert poisson_gaussian_model(gaussian[0, 0].numpy()) is None
    torch.testing.assert_close(wiener.refine_auto(gaussian, pilot, 1, vst=None),
                               wiener.refine_auto(gaussian, pilot, 1, vst=False))


def test_the_vst_refinement_filters_noise_that_an_underrated_model_misses():
    """A Poisson-Gaussian fit that under-rates the noise (as on clipped or quantised data) must not make the
    refinement keep the noise: the level is at least what the pilot removed in the VST domain."""
    from skimage import data

    from selfdenoise.classical.baselines import nlm
    from selfdenoise.core.metrics import psnr

    clean = data.camera()[100:228, 100:228].astype(np.float64) / 255
    rng = np.random.default_rng(1)
    noisy = (rng.poisson(clean * 10) / 10).astype(np.float32)
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]  # noqa: E731
    x, pilot = as_tensor(noisy), as_tensor(nlm(noisy))
    score = lambda t: psnr(clean, t[0, 0].clamp(0, 1).numpy())  # noqa: E731
    right = wiener.refine_through_vst(x, pilot, 1, (0.1, 0.0, 0.0))
    underrated = wiener.refine_through_vst(x, pilot, 1, (0.001, 0.0, 0.0))
    assert score(underrated) > score(x) + 6 and abs(score(underrated) - score(right)) < 3, (
        score(x), score(right), score(underrated))


def test_the_bm3d_engine_is_bm3ds_own_wiener_stage_with_the_pilot():
    """``refine_filter="bm3d"``: the passes are the bm3d package's second stage with the network's output as
    its basic estimate, at the level ``noise_std`` gives; refused for colour and for unknown engines."""
    bm3d = pytest.importorskip("bm3d")
    from skimage import data

    from selfdenoise.classical.wiener import noise_std, refine_estimate
    from selfdenoise.methods import registry

    clean = data.camera()[:72, :80].astype(np.float32) / 255
    noisy = torch.from_numpy(clean + np.random.default_rng(0).normal(0, 0.1, clean.shape).astype(np.float32))[None, None]
    pilot = torch.from_numpy(uniform_filter(noisy[0, 0].numpy(), 3))[None, None]
    out = refine_estimate(noisy, pilot, 1, sigma=0.1, engine="bm3d")
    level = float(noise_std(noisy, pilot, 0.1).max())
    expected = bm3d.bm3d(noisy[0, 0].double().numpy(), level, stage_arg=pilot[0, 0].double().numpy())
    np.testing.assert_allclose(out[0, 0].numpy(), expected, atol=1e-5)
    model = registry.get_method("ne2ne", widths=(8, 8, 8))
    net = model.build_model(1)
    plain = model.denoise(net, noisy)
    refined = registry.get_method("ne2ne", widths=(8, 8, 8), refine=1, refine_filter="bm3d").denoise(net, noisy)
    assert torch.allclose(refined, refine_estimate(noisy, plain, 1, engine="bm3d"), atol=1e-5)
    with pytest.raises(InputError, match="refine_filter"):
        registry.get_method("ne2ne", refine_filter="median")
    with pytest.raises(InputError, match="gray"):
        refine_estimate(noisy.expand(1, 3, -1, -1), pilot.expand(1, 3, -1, -1), 1, sigma=0.1, engine="bm3d")
