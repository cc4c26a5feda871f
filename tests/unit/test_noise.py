import numpy as np
import pytest
import torch

from selfdenoise.core.errors import InputError
from selfdenoise.core.noise import (
    BernoulliNoise,
    GaussianNoise,
    NoiseModel,
    add_noise,
    parse_noise,
)

GOOD_SPECS = {
    "gauss:25": "gauss:25",
    "gauss:5-50": "gauss:5-50",
    "poisson:30": "poisson:30",
    "poisson:5-50": "poisson:5-50",
    "bernoulli:0.5": "bernoulli:0.5",
    "bernoulli:0.1-0.9": "bernoulli:0.1-0.9",
    "impulse:0.1": "impulse:0.1",
    "impulse:0-0.5": "impulse:0-0.5",
    "text:0.2": "text:0.2",
    "text:0-0.5": "text:0-0.5",
    "speckle:0.1": "speckle:0.1",
    "speckle:0.05-0.2": "speckle:0.05-0.2",
    "  GAUSS : 5 - 50 ": "gauss:5-50",
    "Poisson:30.0": "poisson:30",
    "gaussian:15": "gauss:15",
}

ALL_FIXED = ["gauss:25", "poisson:30", "bernoulli:0.5", "impulse:0.1", "text:0.2", "speckle:0.1"]


def _rand_image(shape, seed=0, low=0.0, high=1.0):
    rng = np.random.default_rng(seed)
    return (low + (high - low) * rng.random(shape)).astype(np.float32)


@pytest.mark.parametrize("spec,canonical", GOOD_SPECS.items())
def test_specs_parse_to_canonical(spec, canonical):
    model = parse_noise(spec)
    assert isinstance(model, NoiseModel)
    assert model.spec == canonical
    assert parse_noise(model.spec) == model


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("blur:3", "unknown noise kind"),
        ("gauss", "missing parameter"),
        ("gauss:", "missing parameter"),
        ("", "empty"),
        ("gauss:x", "not a number"),
        ("gauss:nan", "not a number"),
        ("gauss:5-", "not a number"),
        ("gauss:-5", "negative"),
        ("speckle:0.1--0.2", "negative"),
        ("bernoulli:1.5", "[0, 1]"),
        ("impulse:0.2-1.2", "[0, 1]"),
        ("text:2", "[0, 1]"),
        ("gauss:50-5", "reversed range"),
        ("poisson:0", "positive"),
    ],
)
def test_bad_specs_raise_input_error_naming_spec(spec, fragment):
    with pytest.raises(InputError) as info:
        parse_noise(spec)
    message = str(info.value)
    assert repr(spec) in message
    assert fragment in message
    assert "\n" not in message


def test_non_string_spec_rejected():
    with pytest.raises(InputError):
        parse_noise(25)


def test_sigma_255_only_for_fixed_gauss():
    assert parse_noise("gauss:25").sigma_255 == 25.0
    assert parse_noise("gauss:5-50").sigma_255 is None
    assert parse_noise("poisson:30").sigma_255 is None
    assert parse_noise("speckle:0.1").sigma_255 is None


@pytest.mark.parametrize("spec", ALL_FIXED + ["gauss:5-50", "text:0-0.5"])
def test_add_noise_reproducible_per_seed(spec):
    img = _rand_image((23, 19, 3), seed=1)
    a = add_noise(img, spec, seed=7)
    # Unrelated global RNG use between calls must not change the result.
    torch.manual_seed(123)
    torch.rand(10)
    np.random.seed(5)
    b = add_noise(img, spec, seed=7)
    c = add_noise(img, spec, seed=8)
    assert a.dtype == np.float32 and a.shape == img.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_seeded_images_are_independent_of_order():
    imgs = [_rand_image((17, 13), seed=i) for i in range(3)]
    forward = [add_noise(im, "gauss:25", seed=100 + i) for i, im in enumerate(imgs)]
    backward = [add_noise(imgs[i], "gauss:25", seed=100 + i) for i in (2, 1, 0)][::-1]
    for f, b in zip(forward, backward):
        np.testing.assert_array_equal(f, b)


def test_torch_generator_reproducible_and_batch_samples_differ():
    model = parse_noise("gauss:25")
    x = torch.full((4, 3, 16, 16), 0.5)
    a = model(x, torch.Generator().manual_seed(3))
    b = model(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])


def test_gaussian_std_matches_sigma():
    img = np.full((64, 64, 3), 0.5, np.float32)
    noise = add_noise(img, "gauss:25", seed=0) - img
    n = noise.size
    assert abs(noise.mean()) < 4 * (25 / 255) / np.sqrt(n)
    assert noise.std() == pytest.approx(25 / 255, rel=0.05)


def test_gaussian_is_unclipped():
    dark = add_noise(np.zeros((32, 32), np.float32), "gauss:25", seed=0)
    bright = add_noise(np.ones((32, 32), np.float32), "gauss:25", seed=0)
    assert dark.min() < 0.0
    assert bright.max() > 1.0


def test_poisson_mean_and_variance():
    lam, level = 30.0, 0.4
    img = np.full((64, 64, 3), level, np.float32)
    noisy = add_noise(img, "poisson:30", seed=0).astype(np.float64)
    assert noisy.mean() == pytest.approx(level, abs=4 * np.sqrt(level / lam / noisy.size))
    assert noisy.var() == pytest.approx(level / lam, rel=0.1)
    counts = noisy * lam
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)


def test_speckle_is_multiplicative():
    img = np.full((64, 64), 0.5, np.float32)
    img[:, :32] = 0.0
    noisy = add_noise(img, "speckle:0.1", seed=0)
    np.testing.assert_array_equal(noisy[:, :32], 0.0)
    right = noisy[:, 32:]
    assert right.mean() == pytest.approx(0.5, abs=0.01)
    assert right.std() == pytest.approx(0.05, rel=0.1)


def test_bernoulli_drop_fraction_and_mask():
    model = parse_noise("bernoulli:0.3")
    x = torch.from_numpy(_rand_image((3, 48, 40), low=0.1))
    noisy, mask = model.sample(x, torch.Generator().manual_seed(0))
    assert mask.shape == (1, 48, 40)
    assert set(torch.unique(mask).tolist()) <= {0.0, 1.0}
    dropped = 1.0 - mask.mean().item()
    assert dropped == pytest.approx(0.3, abs=0.03)
    assert torch.equal(noisy, x * mask)
    # The same pixels are removed in every channel.
    zero = noisy == 0
    assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])
    assert torch.equal(zero[0], mask[0] == 0)


def test_bernoulli_batch_mask_shape():
    model = BernoulliNoise(0.5, 0.5)
    noisy, mask = model.sample(torch.rand(2, 3, 9, 7), torch.Generator().manual_seed(0))
    assert noisy.shape == (2, 3, 9, 7)
    assert mask.shape == (2, 1, 9, 7)


@pytest.mark.parametrize("spec", ["gauss:25", "poisson:30", "impulse:0.1", "text:0.2", "speckle:0.1"])
def test_other_kinds_return_no_mask(spec):
    _, mask = parse_noise(spec).sample(torch.rand(3, 20, 20), torch.Generator().manual_seed(0))
    assert mask is None


def test_impulse_replaces_fraction_with_random_values():
    img = np.full((64, 64, 3), 0.5, np.float32)
    noisy = add_noise(img, "impulse:0.2", seed=0)
    changed = np.any(noisy != img, axis=-1)
    assert changed.mean() == pytest.approx(0.2, abs=0.03)
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    # Replaced pixels carry independent values per channel.
    hit = noisy[changed]
    assert np.mean(hit[:, 0] != hit[:, 1]) > 0.9


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_text_covers_about_p(p):
    img = np.full((64, 72, 3), 0.5, np.float32)
    noisy = add_noise(img, f"text:{p}", seed=1)
    covered = np.any(noisy != img, axis=-1).mean()
    assert p - 0.02 <= covered <= p + 0.15
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0


def test_text_zero_is_identity():
    img = _rand_image((20, 20, 3))
    np.testing.assert_array_equal(add_noise(img, "text:0", seed=0), img)


def test_ranges_draw_per_sample_parameters_within_bounds():
    x = torch.full((48, 1, 32, 32), 0.5)
    noisy = parse_noise("gauss:5-50")(x, torch.Generator().manual_seed(0))
    stds = (noisy - x).flatten(1).std(dim=1) * 255
    assert stds.min() > 5 * 0.85 and stds.max() < 50 * 1.1
    assert stds.max() - stds.min() > 20

    drop = parse_noise("bernoulli:0.1-0.9")
    _, mask = drop.sample(torch.rand(48, 1, 32, 32), torch.Generator().manual_seed(0))
    fractions = 1 - mask.flatten(1).mean(dim=1)
    assert fractions.min() > 0.1 - 0.06 and fractions.max() < 0.9 + 0.06
    assert fractions.max() - fractions.min() > 0.4


def test_shapes_chw_bchw_and_numpy_gray_colour():
    model = GaussianNoise(10, 10)
    g = torch.Generator().manual_seed(0)
    assert model(torch.rand(3, 11, 9), g).shape == (3, 11, 9)
    assert model(torch.rand(2, 1, 11, 9), g).shape == (2, 1, 11, 9)
    gray = add_noise(_rand_image((37, 31)), "poisson:10", seed=0)
    colour = add_noise(_rand_image((37, 31, 3)), "bernoulli:0.5", seed=0)
    assert gray.shape == (37, 31) and gray.dtype == np.float32
    assert colour.shape == (37, 31, 3) and colour.dtype == np.float32
    # Bernoulli on a colour numpy image drops whole pixels.
    zero = colour == 0
    assert np.array_equal(zero[..., 0], zero[..., 1])


def test_bad_inputs_rejected():
    model = parse_noise("gauss:25")
    with pytest.raises(InputError):
        model(torch.rand(8, 8))
    with pytest.raises(InputError):
        model(torch.zeros(1, 8, 8, dtype=torch.uint8))
    with pytest.raises(InputError):
        add_noise(np.zeros((8, 8), np.uint8), "gauss:25")
    with pytest.raises(InputError):
        add_noise(np.zeros((2, 8, 8, 3), np.float32), "gauss:25")


def test_chained_specs_apply_in_turn_and_round_trip():
    """``poisson:20+gauss:25.5`` is Poisson-Gaussian noise: variance x/20 + 0.1^2 at level x."""
    model = parse_noise(" Poisson:20 + gauss:25.5 ")
    assert model.spec == "poisson:20+gauss:25.5" and parse_noise(model.spec) == model
    flat = np.full((128, 128), 0.5, np.float32)
    noisy = add_noise(flat, model, seed=0)
    assert abs(float(noisy.mean()) - 0.5) < 0.01
    assert abs(float(noisy.std()) - np.sqrt(0.5 / 20 + 0.1**2)) < 0.01
    assert np.array_equal(add_noise(flat, model, seed=1), add_noise(flat, model.spec, seed=1))
    assert parse_noise("gauss:1e+05").spec == "gauss:100000"  # a '+' before a digit is an exponent's sign
    for bad in ("gauss:25+", "+gauss:3", "gauss:25++poisson:3"):
        with pytest.raises(InputError):
            parse_noise(bad)
