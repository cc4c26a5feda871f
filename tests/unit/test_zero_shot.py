"""Fast checks of ``--method zero-shot`` (CPU, a few seconds)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from selfdenoise.classical.wiener import blend_bands
from selfdenoise.core.errors import InputError
from selfdenoise.methods import registry
from selfdenoise.methods.contract import Batch
from selfdenoise.methods.fitting import fit_single_image
from selfdenoise.methods.ne2ne import neighbor_pair_index, subsample
from selfdenoise.methods.zero_shot import (
    PRIOR_PATH,
    SHIPPED_RECIPE,
    ZOO_RECIPE,
    PriorRecipe,
    Route,
    Rung,
    ZeroShot,
    load_prior,
    prior_from_weights,
)
from selfdenoise.nets.unet_small import UNetSmall


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    a = np.round(np.clip(a, 0, 1) * 255)
    b = np.round(np.clip(b, 0, 1) * 255)
    return float(10 * np.log10(255.0**2 / np.mean((a - b) ** 2)))


def test_contract_attributes():
    assert ZeroShot.name == "zero-shot"
    assert registry.kinds("zero-shot") == ("single-image",)


def test_prior_is_shipped_and_small():
    assert PRIOR_PATH.is_file()
    assert PRIOR_PATH.stat().st_size < 3 * 2**20
    net = load_prior()
    assert net is not None
    x = torch.rand(1, 3, 20, 24)
    with torch.inference_mode():
        assert net(x).shape == x.shape


@pytest.mark.parametrize("channels, widths, depth", [(3, (8, 12, 16), 2), (1, (4, 8, 8), 1)])
def test_prior_from_weights_rebuilds_the_compact_unet_from_its_shapes(channels, widths, depth):
    torch.manual_seed(0)
    net = UNetSmall(channels, widths, depth)
    torch.nn.init.normal_(net.out.weight, std=0.1)
    again = prior_from_weights(net.state_dict())
    assert (again.channels, again.widths, again.depth) == (channels, widths, depth)
    x = torch.rand(1, channels, 19, 23)
    with torch.inference_mode():
        assert torch.equal(again(x), net.eval()(x))
    with pytest.raises(InputError, match="compact UNet"):
        prior_from_weights({"conv.weight": torch.zeros(4, 3, 3, 3)})


@pytest.mark.parametrize("prior_channels, channels", [(3, 3), (3, 1), (1, 1), (1, 2), (3, 2)])
def test_fit_from_given_weights_runs_their_network_on_any_channels(prior_channels, channels):
    """A zoo model's compact UNet replaces the shipped prior; the plan prices its views by its size."""
    weights = UNetSmall(prior_channels, (48, 96, 144)).state_dict()
    m = ZeroShot(steps=2, crop=16, batch=2, refine=0, tta=1, shuffle=1, vst="off")
    out = m.fit_denoise(torch.rand(1, channels, 21, 18), weights=weights)
    assert out.shape == (1, channels, 21, 18) and torch.isfinite(out).all()
    assert m.network_cost == pytest.approx(2.24, abs=0.05) and m.max_steps == 2


def test_neighbor_subsampler_picks_adjacent_distinct_pixels():
    x = torch.arange(64.0).view(1, 1, 8, 8)
    i1, i2 = neighbor_pair_index(1, 4, 4, torch.Generator().manual_seed(3))
    a, b = subsample(x, i1), subsample(x, i2)
    d = (a - b).abs()
    assert torch.all((d == 1) | (d == 8))  # horizontal or vertical neighbours, never equal/diagonal
    # each sample stays inside its own 2x2 cell
    rows = torch.div(a, 8, rounding_mode="floor")
    assert torch.equal(torch.div(rows, 2, rounding_mode="floor"), torch.arange(4.0).view(4, 1).expand(4, 4)[None, None])


@pytest.mark.parametrize("shape", [(1, 3, 37, 31), (1, 1, 9, 13), (1, 1, 40, 48), (1, 3, 8, 8), (1, 3, 5, 6)])
def test_shapes_dtype_and_finite(shape):
    torch.manual_seed(0)
    x = torch.rand(shape)
    out = ZeroShot(steps=3, tta=2).fit_denoise(x, seed=0)
    assert out.shape == x.shape
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_deterministic_for_a_seed():
    x = torch.rand(1, 3, 33, 40, generator=torch.Generator().manual_seed(1))
    a = ZeroShot(steps=4, tta=2).fit_denoise(x, seed=7)
    b = ZeroShot(steps=4, tta=2).fit_denoise(x, seed=7)
    assert torch.equal(a, b)


def test_generic_loop_stops_on_seconds():
    x = torch.rand(1, 3, 32, 32)
    model = fit_single_image(ZeroShot(), x, seconds=0.2, seed=0)
    assert not model.training


def test_training_step_returns_finite_loss():
    m = ZeroShot()
    model = m.build_model(3)
    batch = m.sample_batch(torch.rand(1, 3, 40, 36), torch.Generator().manual_seed(0))
    assert isinstance(batch, Batch)
    out = m.training_step(batch, model, 0, 10)
    assert torch.isfinite(out["loss"]) and out["loss"].requires_grad


@pytest.mark.parametrize("gray", [False, True])
def test_improves_psnr_on_astronaut(gray):
    from skimage import data

    clean = data.astronaut()[100:196, 180:276].astype(np.float32) / 255.0  # 96x96 crop
    if gray:
        clean = clean.mean(2, keepdims=True)
    rng = np.random.default_rng(0)
    noisy = clean + rng.standard_normal(clean.shape).astype(np.float32) * 25 / 255
    x = torch.from_numpy(noisy.transpose(2, 0, 1))[None]
    out = ZeroShot().fit_denoise(x, seed=0)[0].numpy().transpose(1, 2, 0)
    p_noisy, p_out = _psnr(noisy, clean), _psnr(out, clean)
    assert np.isfinite(out).all()
    assert p_out > p_noisy + 6.0, (p_noisy, p_out)


def test_tiled_inference_close_to_whole_image():
    import selfdenoise

    rng = np.random.default_rng(3)
    img = np.clip(0.5 + 0.1 * rng.standard_normal((70, 90, 3)), 0, 1).astype(np.float32)
    whole = selfdenoise.denoise(img, steps=0, tta=1, refine=0)
    tiled = selfdenoise.denoise(img, steps=0, tta=1, refine=0, tile=32)
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole).mean() < 0.01


def _correlated_noise(shape, sigma, seed=0):
    """White noise smoothed by a 3x3 box: spatially correlated like demosaiced camera noise."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randn(shape, generator=g)
    n = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(n, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    return n / n.std() * sigma


def test_auto_routes_white_and_correlated_noise():
    from selfdenoise.methods.zero_shot import (
        AUTO_PASSES,
        CORRELATED_NLM_BLEND,
        CORRELATED_NLM_H,
        CORRELATED_SHUFFLE,
        NLM_PILOT_PASSES,
        SHUFFLED_PASSES,
        VST_PASSES,
    )

    g = torch.Generator().manual_seed(0)
    flat = torch.full((1, 3, 96, 96), 0.5)
    white = flat + 0.05 * torch.randn(flat.shape, generator=g)
    correlated = flat + _correlated_noise(flat.shape, 0.05)
    assert ZeroShot().resolve(white) == Route(1, AUTO_PASSES, "network", 0.0, None)
    route = ZeroShot().resolve(correlated)
    assert (route.factor, route.passes, route.pilot, route.blend, route.h_factor) == (
        CORRELATED_SHUFFLE, NLM_PILOT_PASSES, "nlm", CORRELATED_NLM_BLEND, CORRELATED_NLM_H)
    assert ZeroShot(pilot="network").resolve(correlated).passes == SHUFFLED_PASSES  # the network's own
    assert 10.5 < route.sigma < 15  # NLM is given the level on stride-3 sub-images: 0.05 * 255 = 12.75 there
    assert ZeroShot(shuffle=1).resolve(correlated).passes == 0  # correlated noise unshuffled: no Wiener step
    r = ZeroShot(shuffle=2, refine=1).resolve(white)
    assert (r.factor, r.passes) == (2, 1)
    assert ZeroShot(shuffle=4).resolve(torch.rand(1, 3, 40, 50)).factor == 2  # sub-images keep >= 16 px a side
    given = ZeroShot(pilot="network", nlm_blend=0).resolve(correlated)
    assert (given.pilot, given.blend, given.sigma) == ("network", 0.0, None)
    assert ZeroShot(nlm_blend=1, sigma=0.1).resolve(white).sigma == pytest.approx(25.5)
    assert ZeroShot(nlm_h=1.3).resolve(correlated).h_factor == ZeroShot(nlm_h=1.3).resolve(correlated).alone_h_factor == 1.3
    through_vst = ZeroShot().resolve(white, 0.05, through_vst=True)  # step 7: NLM with the known level pilots
    assert (through_vst.pilot, through_vst.passes, through_vst.sigma) == ("nlm", VST_PASSES, pytest.approx(12.75))


@pytest.mark.parametrize("option", [{"pilot": "bm3d"}, {"nlm_blend": 1.5}, {"nlm_blend": "half"}, {"nlm_h": 0},
                                    {"nlm_h": "strong"}])
def test_route_options_reject_bad_values(option):
    from selfdenoise.core.errors import InputError

    with pytest.raises(InputError, match=next(iter(option))):
        ZeroShot(**option)


def test_correlated_route_is_nlm_piloted_wiener_blended_with_nlm():
    """On correlated noise the default is the NLM-piloted Wiener passes on the sub-images, averaged with NLM:
    exactly that composition of the library's own pieces, and better than NLM alone."""
    from skimage import data

    from selfdenoise.classical.baselines import nlm_tiled
    from selfdenoise.classical.wiener import refine_estimate
    from selfdenoise.core.pixel_shuffle import pd_down, pd_up

    clean = torch.from_numpy(data.astronaut()[100:196, 150:262].astype(np.float32) / 255).permute(2, 0, 1)[None]
    noisy = clean + _correlated_noise(clean.shape, 10 / 255)
    m = ZeroShot()
    out = m.fit_denoise(noisy)
    route = m.resolve(noisy)
    nlm = nlm_tiled(noisy, route.sigma, 1024, h_factor=route.h_factor)
    subs, pilot = pd_down(noisy, route.factor), pd_down(nlm, route.factor)
    ref = torch.cat([refine_estimate(subs[k:k + 1], pilot[k:k + 1], route.passes, window=m.rung.window,
                                         features=m.recipe.features)
                     for k in range(len(subs))])
    ref = (1 - route.blend) * pd_up(ref, route.factor, noisy.shape[-2:]) + route.blend * nlm
    assert torch.allclose(out, ref, atol=1e-5)
    score = lambda t: _psnr(t[0].permute(1, 2, 0).numpy(), clean[0].permute(1, 2, 0).numpy())
    assert score(out) > score(nlm) + 0.2, (score(noisy), score(nlm), score(out))


def test_correlated_route_without_a_wiener_pass_is_nlm_with_its_own_strength():
    """Where no Wiener pass follows (``refine=0``, or a plan too short for one), NLM's output is the result,
    run with ``NLM_ALONE_H`` rather than the stronger pilot's ``h``."""
    from selfdenoise.classical.baselines import nlm_tiled
    from selfdenoise.methods.zero_shot import CORRELATED_NLM_H, NLM_ALONE_H

    noisy = torch.full((1, 3, 60, 66), 0.5) + _correlated_noise((1, 3, 60, 66), 0.05)
    route = ZeroShot().resolve(noisy)
    assert (route.h_factor, route.alone_h_factor) == (CORRELATED_NLM_H, NLM_ALONE_H) and NLM_ALONE_H < CORRELATED_NLM_H
    out = ZeroShot(refine=0).fit_denoise(noisy)
    assert torch.allclose(out, nlm_tiled(noisy, route.sigma, 1024, h_factor=NLM_ALONE_H), atol=1e-6)


def test_correlated_route_falls_back_to_the_network_where_nlm_does_not_fit():
    noisy = torch.full((1, 3, 60, 66), 0.5) + _correlated_noise((1, 3, 60, 66), 0.05)
    tight = ZeroShot(budget=0.0).fit_denoise(noisy)
    assert torch.equal(tight, ZeroShot(budget=0.0, pilot="network", nlm_blend=0).fit_denoise(noisy))
    assert not torch.equal(tight, ZeroShot().fit_denoise(noisy))


def test_tiled_nlm_matches_whole_image_nlm():
    from selfdenoise.classical.baselines import nlm, nlm_tiled

    x = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(3))
    whole = nlm(x[0].permute(1, 2, 0).numpy(), sigma=20)
    tiled = nlm_tiled(x, 20, 40, overlap=12)[0].permute(1, 2, 0).numpy()
    assert np.abs(tiled - whole).max() < 0.02 and np.abs(tiled - whole).mean() < 1e-3


@pytest.mark.parametrize("bad", [0, -1, 1.5, "three", True])
def test_shuffle_rejects_bad_values(bad):
    from selfdenoise.core.errors import InputError

    with pytest.raises(InputError, match="shuffle"):
        ZeroShot(shuffle=bad)


@pytest.mark.parametrize("shape", [(1, 3, 37, 41), (1, 1, 50, 35)])
def test_shuffled_fit_keeps_shape_and_is_deterministic(shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(2))
    a = ZeroShot(steps=3, tta=2, shuffle=2, refine=1).fit_denoise(x, seed=1)
    b = ZeroShot(steps=3, tta=2, shuffle=2, refine=1).fit_denoise(x, seed=1)
    assert a.shape == x.shape and torch.isfinite(a).all()
    assert torch.equal(a, b)


def test_shuffle_beats_plain_fit_on_correlated_noise():
    """Neighbor2Neighbor assumes neighbouring pixels have independent noise: on correlated noise the plain
    fit keeps it, the pixel-shuffled fit (neighbours 3 pixels apart) removes it."""
    from skimage import data

    clean = torch.from_numpy(data.astronaut()[100:244, 150:294].astype(np.float32) / 255).permute(2, 0, 1)[None]
    noisy = clean + _correlated_noise(clean.shape, 12 / 255)
    plain = ZeroShot(shuffle=1, refine=0, tta=2).fit_denoise(noisy, seed=0)
    shuffled = ZeroShot(shuffle=3, refine=0, tta=2).fit_denoise(noisy, seed=0)
    score = lambda t: _psnr(t[0].permute(1, 2, 0).numpy(), clean[0].permute(1, 2, 0).numpy())
    assert score(shuffled) > score(plain) + 0.5, (score(noisy), score(plain), score(shuffled))


def test_plan_takes_the_full_recipe_on_small_photos_and_less_on_large_ones():
    from selfdenoise.methods.zero_shot import LADDER, QUALITY

    m = ZeroShot()
    route = lambda passes: Route(1, passes)
    balanced = lambda mp, passes=3: m.plan(mp, route(passes), sum(x * y for x, y in zip(QUALITY["balanced"][0], (1, mp))),
                                           150)
    fast = ZeroShot(quality="fast")
    assert balanced(0.26) == balanced(0.26, 2) == LADDER[0]  # a 512x512 photo: everything
    ranks = [LADDER.index(balanced(mp)) for mp in (0.26, 2, 12, 24)]
    assert ranks == sorted(ranks) and ranks[-1] > 0  # larger photos, cheaper rungs
    assert LADDER.index(fast.plan(12, route(3), 5 + 1.5 * 12, 40)) > ranks[2]
    assert m.plan(1000, route(3), 1.0, 150) == LADDER[-1]  # nothing fits: the cheapest
    given = ZeroShot(tta=3, refine_window=9)
    assert all(r.tta == 3 and r.window == 9 for r in (given.rung, given.plan(24, route(3), 10, 150)))
    assert ZeroShot(refine=1).passes_of(LADDER[0], 3) == 1 and m.passes_of(LADDER[-1], 3) == 0
    assert [m.passes_of(r, 0) for r in LADDER] == [0] * len(LADDER)  # correlated, unshuffled: never a pass


def test_zoo_prior_plans_the_window_63_rung_where_it_fits():
    """From a zoo model (McMaster validation: window 51 31.40 dB over 27's 31.29 from zoo:gauss-color, 63 31.73 over
    51's 31.72 from zoo:gauss-color-15-35) the balanced plan takes the window-63 rung on a 512x512 and a Kodak photo
    (768x512), and one pass with window 27 on a 2-MP photo."""
    from selfdenoise.methods.zero_shot import QUALITY, colour_prior

    m = ZeroShot()
    m.start_from(colour_prior())
    assert m.recipe == ZOO_RECIPE and m.recipe.passes == 2
    limit = lambda mp: QUALITY["balanced"][0][0] + QUALITY["balanced"][0][1] * mp
    plan = lambda mp: m.plan(mp, Route(1, m.recipe.passes), limit(mp), m.recipe.steps)
    assert plan(512 * 512 / 1e6).window == 63
    kodak = plan(768 * 512 / 1e6)
    assert kodak.window == 63 and kodak.tta == 8 and kodak.passes == "auto"
    assert plan(2.0) == Rung(8, 1, 27)


def test_auto_prior_takes_the_band_model_for_the_level_of_white_noise():
    """prior="auto": zoo:gauss-color-15-35 where the white noise's estimated level is in 15-35, zoo:gauss-color
    elsewhere (and where the level is unknown); an image's own estimate decides."""
    from selfdenoise.methods.zero_shot import BAND_PRIORS, COLOUR_PRIOR_PATH, _load_prior_state, colour_prior

    band, blind = (_load_prior_state(str(p))[0] for p in (BAND_PRIORS[(15.0, 35.0)], COLOUR_PRIOR_PATH))
    assert colour_prior(25.0) is band and colour_prior(15.0) is band and colour_prior(35.0) is band
    assert all(colour_prior(level) is blind for level in (None, 5.0, 14.0, 36.0, 50.0))
    flat = torch.full((1, 3, 64, 64), 0.5)
    noise = torch.randn(flat.shape, generator=torch.Generator().manual_seed(3))
    started = []
    for std, given in ((25, None), (45, None), (45, 30 / 255)):
        m = ZeroShot(quality="fast", steps=1, refine=0, tta=1, sigma=given)
        m.fit_denoise(flat + std / 255 * noise)
        started.append(m._start is band)
    assert started == [True, False, True]


def test_refine_weight_mixes_the_refined_image_with_the_estimate_it_started_from():
    from selfdenoise.methods.zero_shot import colour_prior

    x = torch.rand(1, 3, 37, 41, generator=torch.Generator().manual_seed(7))
    run = lambda **kw: ZeroShot(quality="best", steps=3, prior="shipped", **kw).fit_denoise(x)
    pilot, refined, mixed = run(refine=0), run(refine=1), run(refine=1, refine_weight=0.7)
    assert not torch.allclose(pilot, refined, atol=1e-3)
    torch.testing.assert_close(mixed, 0.7 * refined + 0.3 * pilot, atol=1e-5, rtol=0)
    with pytest.raises(InputError, match="refine_weight"):
        ZeroShot(refine_weight=0)
    zoo = ZeroShot()  # "auto": the zoo recipe's share on white noise after the network, 1 on correlated noise
    zoo.start_from(colour_prior())
    flat = torch.full((1, 3, 96, 96), 0.5)
    white = flat + 0.05 * torch.randn(flat.shape, generator=torch.Generator().manual_seed(0))
    assert zoo.resolve(white).weight == zoo.recipe.weight < 1.0
    assert zoo.resolve(flat + _correlated_noise(flat.shape, 0.05)).weight == 1.0
    assert ZeroShot().resolve(white).weight == 1.0  # the shipped prior's recipe
    # the low frequencies' share: the recipe's with "auto", the given share's otherwise; none through NLM
    assert zoo.resolve(white).low_weight == zoo.recipe.low_weight
    given = ZeroShot(refine_weight=0.6)
    given.start_from(colour_prior())
    assert given.resolve(white).low_weight is None
    assert ZeroShot(refine_weight=0.6, refine_low_weight=0.2).resolve(white).low_weight == 0.2
    both = run(refine=1, refine_weight=0.8, refine_low_weight=0.4)
    torch.testing.assert_close(both, blend_bands(refined, pilot, 0.8, 0.4), atol=1e-5, rtol=0)
    assert not torch.allclose(both, run(refine=1, refine_weight=0.8), atol=1e-4)
    # the patches' side, the groups' size, their spacing and the aggregation window reach the passes
    for grouping in ({"refine_patch": 5}, {"refine_group": 4}, {"refine_step": 2}, {"refine_kaiser": 2}):
        assert not torch.allclose(refined, run(refine=1, **grouping), atol=1e-4), grouping


def test_quality_presets_and_budget_shape_the_run():
    from selfdenoise.core.errors import InputError
    from selfdenoise.methods.zero_shot import LADDER

    x = torch.rand(1, 3, 40, 44, generator=torch.Generator().manual_seed(5))
    best = ZeroShot(quality="best", steps=2, prior="shipped")
    best.fit_denoise(x)
    assert best.rung == LADDER[0] and best.recipe == SHIPPED_RECIPE
    colour = ZeroShot(quality="best", steps=2)  # prior "auto": the zoo's colour model, its recipe and ladder
    colour.fit_denoise(x)
    assert colour.recipe == ZOO_RECIPE and colour.rung == ZOO_RECIPE.ladder[0] and colour.network_cost > 2
    colour.fit_denoise(x[:, :1])  # a gray image: the shipped prior again
    assert colour.recipe == SHIPPED_RECIPE and colour.network_cost == 1.0
    tight = ZeroShot(budget=0.0)
    out = tight.fit_denoise(x)
    assert tight.rung == LADDER[-1] and out.shape == x.shape  # no time: the prior alone, one view
    with pytest.raises(InputError, match="quality"):
        ZeroShot(quality="medium")
    with pytest.raises(InputError, match="prior"):
        ZeroShot(prior="zoo")


def _photon_limited(photons: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, noisy) (1, 1, 96, 112): scikit-image's camera at a quarter size, Poisson(photons * x) / photons."""
    from skimage import data

    clean = data.camera()[::4, ::4][:96, :112].astype(np.float64) / 255
    noisy = np.random.default_rng(seed).poisson(clean * photons) / photons
    as_tensor = lambda a: torch.from_numpy(a.astype(np.float32))[None, None]  # noqa: E731
    return as_tensor(clean), as_tensor(noisy)


def test_signal_dependent_noise_runs_through_the_vst(monkeypatch):
    """vst "auto": steps 1-6 see the generalized Anscombe transform of the image with the fitted model, scaled to
    [0, 1] and told its noise level there (std 1 before the scaling); the exact unbiased inverse brings it back."""
    from selfdenoise.classical.vst import exact_unbiased_inverse, generalized_anscombe

    _, noisy = _photon_limited(20)
    m = ZeroShot(vst="auto")
    model = m.noise_model(noisy)
    assert model is not None and model[0] == pytest.approx(1 / 20, rel=0.3)  # the gain: 1 / photons
    seen = {}

    def white(x, sigma, seed, progress, through_vst):
        seen["x"], seen["sigma"], seen["through_vst"] = x.clone(), sigma, through_vst
        return x

    monkeypatch.setattr(m, "_denoise_white", white)
    out = m.fit_denoise(noisy)
    f = generalized_anscombe(noisy.numpy(), *model)
    span = f.max() - f.min()
    assert seen["sigma"] == pytest.approx(1 / span) and seen["through_vst"]
    np.testing.assert_allclose(seen["x"].numpy(), (f - f.min()) / span, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), exact_unbiased_inverse(f, *model), rtol=1e-5, atol=1e-6)


def test_vst_stays_off_for_gaussian_noise_a_given_sigma_or_vst_off():
    from selfdenoise.core.errors import InputError

    clean, noisy = _photon_limited(20)
    gaussian = clean + 0.08 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    assert ZeroShot(vst="auto").noise_model(gaussian) is None
    assert ZeroShot(vst="auto", sigma=0.1).noise_model(noisy) is None
    assert ZeroShot(vst="off").noise_model(noisy) is None
    assert ZeroShot(vst=False).vst == "off" and ZeroShot(vst=True).vst == "auto"  # -p vst=off parses as a bool
    with pytest.raises(InputError, match="vst"):
        ZeroShot(vst="always")


def test_vst_beats_the_plain_route_on_photon_limited_noise():
    clean, noisy = _photon_limited(10)
    kw = dict(steps=0, tta=1, refine=1)
    score = lambda t: _psnr(t[0, 0].numpy(), clean[0, 0].numpy())  # noqa: E731
    plain, through = (score(ZeroShot(vst=v, **kw).fit_denoise(noisy)) for v in ("off", "auto"))
    assert through > plain + 0.8, (score(noisy), plain, through)  # 1.5 dB measured


def test_the_noise_is_measured_once_per_image(monkeypatch):
    """The "auto" settings and step 7 share one ``auto_sigma`` of the image (0.2-0.3 s on 2 cores)."""
    from selfdenoise.methods import zero_shot

    calls = []
    monkeypatch.setattr(zero_shot, "auto_sigma", lambda image: calls.append(image.shape) or (12.0, False))
    x = 0.5 + 0.05 * torch.randn(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    ZeroShot(steps=1, tta=1, refine=0).fit_denoise(x)
    assert calls == [(40, 48, 3)]


def test_pass_seconds_interpolate_in_the_window_area_between_measured_windows():
    recipe = PriorRecipe(150, 2, 6, 1.0, ZOO_RECIPE.ladder, pass_seconds=((27, 10.0), (51, 12.0), (63, 15.0)))
    assert [recipe.seconds_per_pass(w) for w in (27, 51, 63)] == [10.0, 12.0, 15.0]
    assert recipe.seconds_per_pass(40) == pytest.approx(10.0 + 2.0 * (40**2 - 27**2) / (51**2 - 27**2))
    assert recipe.seconds_per_pass(19) < 10.0 and recipe.seconds_per_pass(75) > 15.0  # the end segments extended
    for r in (SHIPPED_RECIPE, ZOO_RECIPE):  # every recipe is priced at the windows its ladder runs
        assert all(r.seconds_per_pass(rung.window) > 0 for rung in r.ladder)
