"""Contract tests: every method in the registry gets them for free (timm style, parametrised over the
live registry): its declared kinds are the Protocols it satisfies, its hooks have the declared
parameters, its configuration round-trips, a saved model reloads to identical output, gradients reach
every parameter (the failure names the one that gets none), and its loss goes down."""
import inspect
import json

import numpy as np
import pytest
import torch
from skimage import data as skdata

from selfdenoise.core.errors import InputError
from selfdenoise.core.metrics import psnr
from selfdenoise.methods import contract, registry
from selfdenoise.modelfile import load_model, save_model
from selfdenoise.training import TrainConfig, data, from_arrays, from_volumes, train

LEARNED = sorted(registry.LEARNED)
#: Options that make a method train from scratch quickly on a tiny image, with a stationary loss
#: (Neighbor2Neighbor's regulariser targets move with the network, so it is off here).
FAST = {"zero-shot": {"use_prior": False, "crop": 32, "batch": 8, "tta": 1, "gamma": 0.0},
        "n2n": {"widths": (16, 16, 16)}, "ne2ne": {"widths": (16, 16, 16), "gamma": 0.0},
        "ne2ne-3d": {"widths": (16, 16, 16), "gamma": 0.0, "crop_depth": 4},
        "tcfl": {"depth": 4, "features": 16, "critic_features": 8, "collapse_patience": 0},
        "self2self": {"width": 16, "depth": 3, "crop": 32, "passes": 2},
        "asym-mask": {"widths": (16, 16, 16), "r3_steps": 2},
        "n2v": {"widths": (8, 16, 16)}, "n2v2": {"widths": (8, 16, 16)}, "struct-n2v": {"widths": (8, 16, 16)}}


def make(name):
    return registry.get_method(name, **FAST.get(name, {}))


def batch_for(method, y, seed=0):
    """A training batch the way the method is trained: from the image itself (zero-shot), or from a
    training set holding it with synthetic noise drawn on the fly (one draw, or two independent
    draws for methods trained on pairs; plus unpaired clean crops, here of the mirrored image, for
    methods that learn from a clean domain; a method of volumes gets crops of a volume whose planes are all
    the image)."""
    if "dataset" not in registry.kinds(method.name):
        return method.sample_batch(y, torch.Generator().manual_seed(seed))
    side = min(32, min(y.shape[-2:]) // 2 * 2)
    needs = method.data_needs()
    image = y[0].permute(1, 2, 0).numpy()
    ts = data.from_volumes([np.stack([image] * 5)], noise="gauss:25") if needs.ndim == 3 else \
        data.from_arrays([image], noise="gauss:25")
    if needs.clean:
        ts = ts.with_clean([y[0].flip(-1)])
    return ts.sample(0, 4, side, needs, seed=seed)


def noisy_pair(natural, sigma=25, seed=0, channels=3):
    clean = natural if channels == 3 else natural.mean(-1, keepdims=True)
    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(clean)).permute(2, 0, 1)[None].float()
    return x, x + sigma / 255 * torch.randn(x.shape, generator=g)


@pytest.mark.parametrize("name", LEARNED)
@pytest.mark.parametrize("channels,h,w", [(3, 37, 31), (1, 29, 42)])
def test_shapes_gradients_and_no_nan_on_odd_sizes(name, channels, h, w):
    method = make(name)
    model = method.build_model(channels)
    y = torch.rand(1, channels, h, w)
    batch = batch_for(method, y)
    out = method.training_step(batch, model, 0, 10)
    loss = out["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert_gradients_reach(model.named_parameters())
    d = method.denoise(model, y)
    assert d.shape == y.shape and torch.isfinite(d).all()


def assert_gradients_reach(named_parameters) -> None:
    """Every trainable parameter has a finite gradient, and some gradient is non-zero; a failure names them."""
    grads = {n: p.grad for n, p in named_parameters if p.requires_grad}
    missing = [n for n, g in grads.items() if g is None]
    assert grads and not missing, f"no gradient reaches {missing}"
    bad = [n for n, g in grads.items() if not torch.isfinite(g).all()]
    assert not bad, f"non-finite gradients in {bad}"
    assert any(g.abs().sum() > 0 for g in grads.values()), "every gradient is zero"


@pytest.mark.parametrize("name", registry.names("gan"))
def test_each_loss_of_a_gan_reaches_its_own_parameter_group(name):
    """The loop steps every group on its own loss: each loss must reach all parameters of its group."""
    method = make(name)
    model = method.build_model(1)
    out = method.training_step(batch_for(method, torch.rand(1, 1, 33, 35)), model, 0, 10)
    groups = method.param_groups(model)
    for k, (group_name, params) in enumerate(groups.items()):
        params = list(params["params"] if isinstance(params, dict) else params)
        model.zero_grad(set_to_none=True)
        out["loss" if k == 0 else f"{group_name}_loss"].backward(retain_graph=True)
        names = {id(p): n for n, p in model.named_parameters()}
        assert_gradients_reach((names[id(p)], p) for p in params)


# ------------------------------------------------------------------------------- the declared contract
def instance(name: str, entry: registry.Entry):
    """A registered method as the loop, the API and the benchmark see it (image methods built fast)."""
    target = entry.target
    if not inspect.isclass(target):
        return target
    return target(**FAST.get(name, {})) if entry is registry.IMAGE_METHODS.get(name) else target()


ALL = [(n, e) for n, e in registry.IMAGE_METHODS.items()] + [(n, e) for n, e in registry.SEQUENCE_METHODS.items()]


@pytest.mark.parametrize("name,entry", ALL, ids=[f"{e.kinds[0]}:{n}" for n, e in ALL])
def test_registered_methods_satisfy_exactly_their_declared_kinds(name, entry):
    method = instance(name, entry)
    assert set(entry.kinds) <= set(contract.KINDS), entry.kinds
    for kind in entry.kinds:
        assert isinstance(method, contract.KINDS[kind]), f"{name} does not satisfy {kind}"
    if inspect.isclass(entry.target):  # a learned method offers no hooks of a kind it does not declare
        image = entry is registry.IMAGE_METHODS.get(name)
        for kind in ("dataset", "single-image", "gan") if image else ("sequence",):
            assert (kind in entry.kinds) == isinstance(method, contract.KINDS[kind]), (name, kind)
        assert method.name == name


@pytest.mark.parametrize("name,entry", ALL, ids=[f"{e.kinds[0]}:{n}" for n, e in ALL])
def test_hooks_take_the_parameters_the_contract_declares(name, entry):
    target = entry.target
    for kind in entry.kinds:
        protocol = contract.KINDS[kind]
        hooks = ["__call__"] if not inspect.isclass(target) else [
            h for h, v in vars(protocol).items() if inspect.isfunction(v) and not h.startswith("_")]
        for hook in hooks:
            declared = list(inspect.signature(getattr(protocol, hook)).parameters)[1:]  # without self
            fn = target if hook == "__call__" else getattr(target, hook)
            actual = list(inspect.signature(fn).parameters)[0 if hook == "__call__" else 1:]
            positional = [p for p in declared if p not in ("options",)]
            assert actual[: len(positional)] == positional, f"{name}.{hook}{tuple(actual)} vs {kind}: {positional}"


LEARNED_CLASSES = [(n, e) for n, e in ALL if inspect.isclass(e.target)]


@pytest.mark.parametrize("name,entry", LEARNED_CLASSES, ids=[f"{e.kinds[0]}:{n}" for n, e in LEARNED_CLASSES])
def test_config_rebuilds_the_same_method(name, entry):
    method = instance(name, entry)
    config = method.config()
    assert json.loads(json.dumps(config)) == config  # what a model file stores
    rebuilt = entry.target(**config)
    assert rebuilt.config() == config
    assert set(config) <= set(inspect.signature(entry.target).parameters)


@pytest.mark.parametrize("name", LEARNED)
def test_save_load_denoise_gives_identical_output(name, tmp_path):
    method = make(name)
    torch.manual_seed(1)
    model = method.build_model(3)
    path = save_model(tmp_path / "m.sdm", model, method=name, channels=3, config=method.config())
    loaded, network, meta = load_model(path)
    x = torch.rand(1, 3, 37, 31, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(3)  # dropout ensembles (Self2Self) draw from the global generator
    expected = method.denoise(model, x)
    torch.manual_seed(3)
    assert torch.equal(loaded.denoise(network, x), expected) and meta["config"] == method.config()


@pytest.mark.parametrize("name", LEARNED)
def test_training_lowers_the_self_supervised_loss(name, natural):
    clean, y = noisy_pair(natural[:48, :48])
    method = make(name)
    torch.manual_seed(0)  # the initial weights must not depend on which tests ran before
    model = method.build_model(3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    fixed = batch_for(method, clean if "dataset" in registry.kinds(name) else y)  # one fixed batch: its loss must be optimisable
    first = float(method.training_step(fixed, model, 0, 40)["loss"].detach())
    for step in range(40):
        loss = method.training_step(fixed, model, step, 40)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = float(method.training_step(fixed, model, 40, 40)["loss"].detach())
    assert last < 0.9 * first, (first, last)


#: the dataset methods with the collaborative Wiener refinement (``base.DatasetMethodBase``); Self2Self has none
REFINED = [n for n in registry.names("dataset") if "refine" in registry.method_options(n)]


@pytest.mark.parametrize("name", REFINED)
def test_refine_option_applies_the_collaborative_wiener_refinement_to_the_network_output(name, natural):
    from selfdenoise.classical.wiener import refine_estimate

    _, y = noisy_pair(natural[:40, :44])
    model = make(name).build_model(3)
    plain = make(name).denoise(model, y)
    refined = registry.get_method(name, **FAST.get(name, {}), refine=1).denoise(model, y)
    assert torch.allclose(refined, refine_estimate(y, plain, 1), atol=1e-5)
    assert not torch.allclose(refined, plain, atol=1e-3)
    with pytest.raises(InputError, match="refine"):
        registry.get_method(name, refine=-1)


@pytest.mark.parametrize("name", REFINED)
def test_refine_vst_auto_refines_signal_dependent_noise_through_the_anscombe_transform(name):
    """``refine_vst="auto"``: on Poisson-Gaussian noise the passes run in the VST domain with the fitted model
    (``refine_through_vst``); "off" refines as before; anything else is refused."""
    from skimage import data

    from selfdenoise.classical.noise_level import poisson_gaussian_model
    from selfdenoise.classical.wiener import refine_estimate, refine_through_vst

    clean = data.camera()[100:228, 100:228].astype(np.float64) / 255
    rng = np.random.default_rng(0)
    noisy = (rng.poisson(clean * 10) / 10 + rng.normal(0, 0.01, clean.shape)).astype(np.float32)
    y = torch.from_numpy(noisy)[None, None]
    method = make(name)
    model = method.build_model(1)
    plain = method.denoise(model, y)
    fit = poisson_gaussian_model(noisy)
    assert fit is not None
    vst = registry.get_method(name, **FAST.get(name, {}), refine=1, refine_vst="auto").denoise(model, y)
    assert torch.allclose(vst, refine_through_vst(y, plain, 1, fit), atol=1e-5)
    off = registry.get_method(name, **FAST.get(name, {}), refine=1, refine_vst="off").denoise(model, y)
    assert torch.allclose(off, refine_estimate(y, plain, 1), atol=1e-5)
    assert registry.get_method(name, refine_vst=False).refine_vst == "off"  # as "-p refine_vst=off" parses
    with pytest.raises(InputError, match="refine_vst"):
        registry.get_method(name, refine_vst="yes")


#: Steps and required gain (dB) for the test below where the default network needs more than 10 steps
#: to gain 5 dB: Self2Self learns from scratch, without a prior (350 steps: +4.6 dB in about 30 s; 600
#: steps clear +5 dB but take twice as long).
ZERO_SHOT_STEPS = {"self2self": 350}
ZERO_SHOT_GAIN = {"self2self": 4.0}


@pytest.mark.parametrize("name", [n for n in LEARNED if "dataset" not in registry.kinds(n) or n in ZERO_SHOT_STEPS])
def test_zero_shot_defaults_denoise_a_natural_image(name, natural):
    clean, y = noisy_pair(natural)
    out = registry.get_method(name, steps=ZERO_SHOT_STEPS.get(name, 10)).fit_denoise(y, seed=0)
    as_hwc = lambda t: t[0].permute(1, 2, 0).clamp(0, 1).numpy()
    noisy_db, out_db = psnr(as_hwc(clean), as_hwc(y)), psnr(as_hwc(clean), as_hwc(out))
    assert out_db > noisy_db + ZERO_SHOT_GAIN.get(name, 5.0), (noisy_db, out_db)


@pytest.mark.parametrize("name", [n for n in LEARNED if "budget" in registry.method_options(n)])
def test_a_budget_covers_the_whole_image(name):
    """Fitting, inference and any refinement together keep to ``budget`` seconds (a tolerance for the
    prediction of what inference will cost)."""
    import time

    x = torch.rand(1, 3, 150, 170, generator=torch.Generator().manual_seed(6))
    start = time.perf_counter()
    out = registry.get_method(name, budget=2.0).fit_denoise(x, seed=0)
    assert out.shape == x.shape and time.perf_counter() - start < 2.0 * 1.5 + 0.5


def test_key_value_options_parse_numbers_bools_tuples_and_refuse_malformed_items():
    from selfdenoise.core.params import parse_params

    got = parse_params(["steps=30", "lr=3e-4", "r3=false", "blend=On", "widths=32,64,96", "fill=zero",
                        "blend-sigma=none"])
    assert got == {"steps": 30, "lr": 3e-4, "r3": False, "blend": True, "widths": (32, 64, 96), "fill": "zero",
                   "blend_sigma": None}
    with pytest.raises(InputError, match="not KEY=VALUE"):
        parse_params(["steps"])


#: Per dataset method: options (the method's own network and loss unless noted), training steps, and the
#: PSNR gain (dB) required of its inference rule on the noisy training image after them. Measured on a
#: 61x53 astronaut crop, sigma 25, 2 CPU threads: n2n +0.9 dB, ne2ne +0.5 dB after 60 steps (about 3 s
#: each); ne2ne-3d, on a volume of four realisations of that crop, +0.17 dB after 100 steps (1.8 s).
#: asym-mask fills hidden pixels with 0 and skips its blend and R3, so the masked predictor itself
#: is scored (+10.5 dB after 40 steps; with the default mean fill it starts at the interpolation baseline,
#: which a few dozen steps do not beat).
RISE = {"n2n": ({}, 60, 0.5), "ne2ne": ({}, 60, 0.25),
        "ne2ne-3d": ({"crop_depth": 4, "widths": (16, 16, 16)}, 100, 0.1),
        "asym-mask": ({"fill": "zero", "blend": False, "r3": False}, 40, 5.0),
        "tcfl": ({"depth": 4, "features": 16, "critic_features": 16, "collapse_patience": 0}, 60, 0.25),
        **{n: ({"widths": (16, 32, 32), "percent": 2.0}, 40, 1.0) for n in ("n2v", "n2v2", "struct-n2v")},
        "self2self": ({"width": 16, "depth": 3, "passes": 4}, 60, 1.0)}
#: TCFL learns to denoise only through its adversarial term (its pixel losses are zero for a generator that
#: predicts no noise): on this image every setting tried lowered the PSNR within 40-300 steps (lsgan and
#: wgan, lr 1e-4 to 1e-3, fake_weight 0.1-1, pixel_weight 1-25: 20.6 -> 8.7-20.5 dB); on oct-duke its
#: curve rises only after about 400 steps. Kept as a strict expected failure: it reports when that changes.
SLOW_TO_RISE = {"tcfl"}


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="see SLOW_TO_RISE"))
                                  if n in SLOW_TO_RISE else n for n in registry.names("dataset")])
def test_psnr_rises_after_a_few_dozen_cpu_steps_on_a_tiny_odd_sized_image(name):
    """DeepInverse's key test: train on noisy realisations only (fixed draws, no clean image) and the
    method's own denoiser gets closer to the clean image."""
    image = (skdata.astronaut() / 255.0).astype(np.float32)
    clean, other_scene = image[100:161, 150:203], image[300:371, 250:321]
    rng = np.random.default_rng(0)
    noisy = [clean + 25 / 255 * rng.standard_normal(clean.shape).astype(np.float32) for _ in range(2)]
    options, steps, gain = RISE[name]
    method = registry.get_method(name, **options)
    needs = method.data_needs()
    ts = from_arrays([noisy] if needs.pairs else noisy)
    if needs.clean:
        ts = ts.with_clean([other_scene])
    x = torch.from_numpy(noisy[0]).permute(2, 0, 1)[None]
    if needs.ndim == 3:  # a volume of four realisations of the scene, its first plane scored
        noisy += [clean + 25 / 255 * rng.standard_normal(clean.shape).astype(np.float32) for _ in range(2)]
        ts, x = from_volumes([np.stack(noisy)]), torch.from_numpy(np.stack(noisy)).movedim(-1, 0)[None]

    def score(model) -> float:
        out = method.denoise(model, x)
        out = out[:, :, 0] if out.ndim == 5 else out
        return psnr(clean, np.clip(out[0].permute(1, 2, 0).numpy(), 0, 1), data_range=1.0)

    torch.manual_seed(0)  # the loop seeds the same way before it builds the network
    before = score(method.build_model(3))
    result = train(method, ts, TrainConfig(steps=steps, crop=48, batch=8, lr=1e-3 if name != "tcfl" else 1e-4,
                                           schedule="constant", betas=(0.9, 0.99), clip=0.1, seed=0))
    after = score(result.model)
    assert after > before + gain, f"{name}: {before:.2f} -> {after:.2f} dB after {steps} steps"
