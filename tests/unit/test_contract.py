"""Contract tests: every learned method in the registry gets them for free."""
import numpy as np
import pytest
import torch

from selfdenoise.methods import registry
from selfdenoise.training import data
from selfdenoise.core.errors import InputError
from selfdenoise.core.metrics import psnr

LEARNED = sorted(registry.LEARNED)
#: Options that make a method train from scratch quickly on a tiny image, with a stationary loss
#: (Neighbor2Neighbor's regulariser targets move with the network, so it is off here).
FAST = {"zero-shot": {"use_prior": False, "crop": 32, "batch": 8, "tta": 1, "gamma": 0.0},
        "n2n": {"widths": (16, 16, 16)}, "ne2ne": {"widths": (16, 16, 16), "gamma": 0.0},
        "tcfl": {"depth": 4, "features": 16, "critic_features": 8, "collapse_patience": 0},
        "self2self": {"width": 16, "depth": 3, "crop": 32, "passes": 2},
        "asym-mask": {"widths": (16, 16, 16), "r3_steps": 2}}


def make(name):
    return registry.get_method(name, **FAST.get(name, {}))


def batch_for(method, y, seed=0):
    """A training batch the way the method is trained: from the image itself (zero-shot), or from a
    training set holding it with synthetic noise drawn on the fly (one draw, or two independent
    draws for methods trained on pairs; plus unpaired clean crops, here of the mirrored image, for
    methods that learn from a clean domain)."""
    if "dataset" not in registry.kinds(method.name):
        return method.sample_batch(y, torch.Generator().manual_seed(seed))
    side = min(32, min(y.shape[-2:]) // 2 * 2)
    ts = data.from_arrays([y[0].permute(1, 2, 0).numpy()], noise="gauss:25")
    needs = method.data_needs()
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
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    d = method.denoise(model, y)
    assert d.shape == y.shape and torch.isfinite(d).all()


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


DATASET_METHODS = registry.names("dataset")


@pytest.mark.parametrize("name", DATASET_METHODS)
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


#: Steps and required gain (dB) for the test below where the default network needs more than 10 steps
#: to gain 5 dB: Self2Self learns from scratch, without a prior (350 steps: +4.6 dB in about 30 s; 600
#: steps clear +5 dB but take twice as long).
ZERO_SHOT_STEPS = {"self2self": 350}
ZERO_SHOT_GAIN = {"self2self": 4.0}


@pytest.mark.parametrize("name", [n for n in LEARNED if "dataset" not in registry.kinds(n)])
def test_zero_shot_defaults_denoise_a_natural_image(name, natural):
    clean, y = noisy_pair(natural)
    out = registry.get_method(name, steps=ZERO_SHOT_STEPS.get(name, 10)).fit_denoise(y, seed=0)
    as_hwc = lambda t: t[0].permute(1, 2, 0).clamp(0, 1).numpy()
    noisy_db, out_db = psnr(as_hwc(clean), as_hwc(y)), psnr(as_hwc(clean), as_hwc(out))
    assert out_db > noisy_db + ZERO_SHOT_GAIN.get(name, 5.0), (noisy_db, out_db)


def test_key_value_options_parse_numbers_bools_tuples_and_refuse_malformed_items():
    from selfdenoise.core.params import parse_params

    got = parse_params(["steps=30", "lr=3e-4", "r3=false", "blend=On", "widths=32,64,96", "fill=zero",
                        "blend-sigma=none"])
    assert got == {"steps": 30, "lr": 3e-4, "r3": False, "blend": True, "widths": (32, 64, 96), "fill": "zero",
                   "blend_sigma": None}
    with pytest.raises(InputError, match="not KEY=VALUE"):
        parse_params(["steps"])
