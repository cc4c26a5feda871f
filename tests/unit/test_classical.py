import numpy as np
import pytest

from selfdenoise import api
from selfdenoise.classical import baselines
from selfdenoise.classical.noise_level import estimate_sigma
from selfdenoise.core.errors import MissingDependencyError


def noisy_image(natural, sigma=25, seed=0):
    return natural + np.random.default_rng(seed).normal(0, sigma / 255, natural.shape).astype(np.float32)


def test_nlm_wrapper_equals_direct_call(natural):
    from skimage.restoration import denoise_nl_means

    y = noisy_image(natural)
    s = 25 / 255
    direct = denoise_nl_means(y, h=0.8 * s, sigma=s, patch_size=5, patch_distance=6, fast_mode=True, channel_axis=-1)
    np.testing.assert_array_equal(baselines.nlm(y, sigma=25), direct.astype(np.float32))


def test_bm3d_wrapper_makes_exactly_the_direct_call(natural, monkeypatch):
    bm3d = pytest.importorskip("bm3d")
    y = noisy_image(natural)[:48, :40]
    # Numerically: equal up to the library's own run-to-run jitter (up to ~4e-4, measured).
    np.testing.assert_allclose(baselines.bm3d(y, sigma=25), bm3d.bm3d_rgb(y, 25 / 255), atol=1e-3, rtol=0)
    calls = []
    monkeypatch.setattr(bm3d, "bm3d_rgb", lambda *a, **k: calls.append(("rgb", a, k)) or a[0])
    monkeypatch.setattr(bm3d, "bm3d", lambda *a, **k: calls.append(("gray", a, k)) or a[0])
    baselines.bm3d(y, sigma=25)
    baselines.bm3d(y[..., 1], sigma=12.5)
    (kind1, a1, k1), (kind2, a2, k2) = calls
    assert kind1 == "rgb" and np.array_equal(a1[0], y) and a1[1] == 25 / 255 and k1 == {}
    assert kind2 == "gray" and np.array_equal(a2[0], y[..., 1]) and a2[1] == 12.5 / 255 and k2 == {}


def test_bm3d_missing_gives_clear_error(monkeypatch, natural):
    import builtins

    real_import = builtins.__import__

    def no_bm3d(name, *a, **k):
        if name == "bm3d":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_bm3d)
    with pytest.raises(MissingDependencyError, match=r"selfdenoise\[bm3d\]"):
        baselines.bm3d(natural, sigma=10)


@pytest.mark.parametrize("sigma", [10, 25, 50])
def test_sigma_estimate_close_on_white_noise(natural, sigma):
    est = estimate_sigma(noisy_image(natural, sigma, seed=sigma))
    assert abs(est - sigma) < 0.15 * sigma + 1.0


def test_classical_denoise_improves_psnr(natural):
    from selfdenoise.core.metrics import psnr

    y = noisy_image(natural)
    for method in ("nlm", "bm3d"):
        if method == "bm3d":
            pytest.importorskip("bm3d")
        out = api.denoise(y, method=method)  # sigma estimated
        assert psnr(natural, out) > psnr(natural, np.clip(y, 0, 1)) + 3


def test_unknown_options_give_one_line_errors(natural):
    with pytest.raises(api.InputError, match="no option budget.*h_factor"):
        api.denoise(natural, method="nlm", budget=3)
    with pytest.raises(api.InputError, match="zero-shot.*no option nonsense"):
        api.denoise(natural, method="zero-shot", nonsense=1)
    with pytest.raises(api.InputError, match="unknown method 'nope'"):
        api.denoise(natural, method="nope")


def test_a_noise_model_runs_the_baselines_through_the_anscombe_vst(natural):
    from selfdenoise.classical.vst import vst_denoise

    clean = natural[:40, :44]
    noisy = api.add_noise(clean, "poisson:30", seed=0)
    direct = vst_denoise(lambda img, s: baselines.nlm(img, s), noisy, photons=30)
    np.testing.assert_array_equal(baselines.nlm(noisy, noise="poisson:30"), direct)
    mixed = vst_denoise(lambda img, s: baselines.nlm(img, s), noisy, photons=20, sigma=0.1)
    np.testing.assert_array_equal(baselines.nlm(noisy, noise="poisson:20+gauss:25.5"), mixed)
    np.testing.assert_array_equal(baselines.nlm(noisy, noise="gauss:25"), baselines.nlm(noisy, sigma=25))
    with pytest.raises(api.InputError, match="fixed values"):
        baselines.nlm(noisy, noise="poisson:5-50")


def test_baselines_estimate_correlated_noise_on_pixel_shuffle_sub_images(natural):
    """On spatially correlated noise (white noise blurred, as demosaicing does) the level is estimated on
    stride-3 sub-images, so the baseline does not mistake the noise for texture; on white noise at stride 1."""
    from scipy.ndimage import uniform_filter

    rng = np.random.default_rng(0)
    correlated = natural + uniform_filter(rng.normal(0, 0.12, natural.shape), size=(3, 3, 1)).astype(np.float32)
    white = api.add_noise(natural, "gauss:15", seed=0)
    assert estimate_sigma(correlated, stride="auto") == estimate_sigma(correlated, stride=3)
    assert estimate_sigma(correlated, stride=3) > 1.5 * estimate_sigma(correlated, stride=1)
    assert estimate_sigma(white, stride="auto") == estimate_sigma(white, stride=1)
    np.testing.assert_array_equal(baselines.nlm(correlated), baselines.nlm(correlated, sigma=estimate_sigma(correlated, stride=3)))
    assert api.estimate_sigma(correlated) == estimate_sigma(correlated, stride=3)


def test_sigma_estimate_samples_windows_without_copying_them_all():
    """A 1500x1500 channel has 2.2 M 7x7 windows (860 MB as float64 rows); only the sampled ones are copied."""
    import tracemalloc

    rng = np.random.default_rng(3)
    image = (0.5 + rng.normal(0, 10 / 255, (1500, 1500))).astype(np.float32)
    tracemalloc.start()
    sigma = estimate_sigma(image)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert abs(sigma - 10) < 0.5
    assert peak < 80e6, f"peak {peak / 1e6:.0f} MB"


@pytest.mark.parametrize("photons, read", [(20.0, 25.5), (100.0, 5.0)])
def test_poisson_gaussian_fit_recovers_the_noise_model(photons, read):
    from skimage import data

    from selfdenoise.classical.noise_level import SIGNAL_DEPENDENCE, estimate_poisson_gaussian

    clean = data.astronaut()[:256, :256].astype(np.float32) / 255
    rng = np.random.default_rng(1)
    noisy = rng.poisson(clean * photons) / photons + rng.normal(0, read / 255, clean.shape)
    gain, var0, dependence = estimate_poisson_gaussian(noisy)
    assert gain == pytest.approx(1 / photons, rel=0.15)
    assert var0 == pytest.approx((read / 255) ** 2, abs=0.2 * (read / 255) ** 2 + 2e-4)
    assert dependence > (SIGNAL_DEPENDENCE if read < 10 else 4)  # 15 and 4.6: strong read noise flattens it
    white = clean + rng.normal(0, read / 255, clean.shape)
    gain, var0, dependence = estimate_poisson_gaussian(white, spread="mad")
    assert dependence < 1.1 and var0 == pytest.approx((read / 255) ** 2, rel=0.3)


@pytest.mark.parametrize("sigma", [15, 25, 50])
def test_clipped_8bit_gaussian_noise_is_not_read_as_signal_dependent(sigma):
    """Clipping at 0 and 1 shrinks the variance at both ends: the linear fit reads a dependence of 2-3 into
    this crop; the clipped model (Foi et al. 2008) finds one level, about sigma^2, and such a photo keeps one
    noise level; a Poisson image (zeros, but no clipped tail) still does not."""
    from skimage import data

    from selfdenoise.classical.noise_level import estimate_poisson_gaussian, poisson_gaussian_model

    clean = data.astronaut()[:256, :256].astype(np.float64) / 255
    rng = np.random.default_rng(sigma)
    photo = np.round(np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1) * 255) / 255
    assert estimate_poisson_gaussian(photo, clipping=False)[2] > 1.5  # the clipping's false dependence
    gain, var0, dependence = estimate_poisson_gaussian(photo)
    assert dependence < 1.3 and var0 == pytest.approx((sigma / 255) ** 2, rel=0.25)
    assert poisson_gaussian_model(photo) is None
    counts = rng.poisson(clean * 20) / 20
    assert np.mean(counts == 0) > 0.01 and poisson_gaussian_model(counts) is not None
    assert estimate_poisson_gaussian(counts)[0] == pytest.approx(1 / 20, rel=0.15)


def test_clipped_moments_match_sampling():
    """The clipped normal's mean and variance (Foi et al. 2008) against a million samples, one limit, two
    limits and none."""
    from selfdenoise.classical.noise_level import clipped_moments

    rng = np.random.default_rng(0)
    for mean, std, low, high in [(0.05, 0.1, 0.0, np.inf), (0.9, 0.2, 0.0, 1.0), (0.5, 0.1, -np.inf, np.inf),
                                 (1.1, 0.3, -np.inf, 1.0)]:
        samples = np.clip(rng.normal(mean, std, 1_000_000), low, high)
        first, variance = clipped_moments(np.array([mean]), np.array([std]), low, high)
        assert first[0] == pytest.approx(samples.mean(), abs=1e-3)
        assert variance[0] == pytest.approx(samples.var(), rel=5e-3)


def test_poisson_gaussian_fit_on_photon_limited_counts():
    """A confocal-like frame: most pixels sit on the camera offset and a photon adds many counts. The
    details' variance recovers the gain where their MAD (mostly zero) sees almost no noise."""
    from skimage import data

    from selfdenoise.classical.noise_level import estimate_poisson_gaussian

    photons = data.camera()[:240, :250].astype(np.float64) / 255 * 2.0  # 0-2 photons per pixel
    counts = 3 + 18 * np.random.default_rng(4).poisson(photons)  # offset 3, 18 counts per photon
    noisy = np.clip(counts, 0, 255).astype(np.float32) / 255
    gain, var0, dependence = estimate_poisson_gaussian(noisy, spread="moment")
    assert gain == pytest.approx(18 / 255, rel=0.25) and dependence > 3
    assert estimate_poisson_gaussian(noisy, spread="mad")[0] < 0.5 * 18 / 255


def test_baselines_without_a_noise_model_fit_one_on_signal_dependent_noise(natural):
    """White, signal-dependent noise (fluorescence) runs through the VST with the fitted model; the
    result is close to the one with the true model and well above a single estimated level."""
    from selfdenoise.classical.noise_level import estimate_poisson_gaussian
    from selfdenoise.classical.vst import vst_denoise
    from selfdenoise.core.metrics import psnr

    clean = np.tile(np.linspace(0.05, 0.95, 96, dtype=np.float32)[None, :, None], (96, 1, 1)) * 0.5 + natural[..., :1] * 0.5
    noisy = (np.random.default_rng(2).poisson(clean * 10) / 10).astype(np.float32)
    gain, var0, _ = estimate_poisson_gaussian(noisy)
    auto = baselines.nlm(noisy)
    white = lambda img, s: baselines.nlm(img, sigma=s)  # noqa: E731
    np.testing.assert_array_equal(auto, vst_denoise(white, noisy, gain=gain, sigma=np.sqrt(max(var0, 0)),
                                                    mu=max(-var0, 0) / gain))
    true_model = baselines.nlm(noisy, noise="poisson:10")
    one_level = baselines.nlm(noisy, sigma=estimate_sigma(noisy))
    assert psnr(clean, auto) > psnr(clean, true_model) - 0.5
    assert psnr(clean, auto) > psnr(clean, one_level)
    never = baselines.with_estimated_noise(white, noisy, dependence_threshold=np.inf)
    np.testing.assert_array_equal(never, one_level)  # the threshold is what routes the image to the VST


@pytest.mark.parametrize("shape", [(9, 7), (23, 40, 3), (2, 2)])
def test_baselines_estimate_the_noise_of_tiny_images(shape):
    image = np.random.default_rng(4).random(shape).astype(np.float32)
    assert baselines.nlm(image).shape == image.shape
