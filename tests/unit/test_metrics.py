import math

import numpy as np
import pytest
from skimage import data
from skimage.filters import gaussian
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from selfdenoise.core.errors import InputError
from selfdenoise.core.metrics import (
    epi_correlation,
    epi_ratio,
    evaluate_pair,
    gcmse,
    psnr,
    quantize_uint8,
    rmse,
    ssim,
)


def _camera_crop():
    return data.camera()[100:161, 200:257]  # 61 x 57 uint8


def _astro_crop():
    return data.astronaut()[60:97, 150:181]  # 37 x 31 x 3 uint8


def _noisy_u8(img, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(np.round(img + rng.normal(0, sigma, img.shape)), 0, 255).astype(np.uint8)


def test_quantize_uint8_clips_and_rounds():
    x = np.array([[-0.1, 0.0, 0.5], [1.2, 0.999, 0.002]])
    q = quantize_uint8(x)
    assert q.dtype == np.uint8
    np.testing.assert_array_equal(q, [[0, 0, 128], [255, 255, 1]])
    u = np.array([[3, 250]], np.uint8)
    np.testing.assert_array_equal(quantize_uint8(u), u)
    with pytest.raises(InputError):
        quantize_uint8(np.array([np.nan]))


def test_psnr_hand_computed():
    clean = np.zeros((2, 2))
    test = np.array([[0.5, 0.0], [0.0, 0.0]])
    # MSE = 0.25 / 4 = 0.0625 -> 10 log10(1 / 0.0625)
    assert psnr(clean, test) == pytest.approx(10 * math.log10(16.0))


def test_psnr_identical_is_inf():
    img = _astro_crop()
    assert psnr(img, img) == math.inf


@pytest.mark.parametrize("img", [_camera_crop(), _astro_crop()])
def test_psnr_matches_skimage(img):
    noisy = _noisy_u8(img, 20)
    expected = peak_signal_noise_ratio(img, noisy, data_range=255)
    assert psnr(img, noisy) == pytest.approx(expected, rel=1e-10)
    f_clean, f_noisy = img / 255.0, noisy / 255.0
    assert psnr(f_clean, f_noisy) == pytest.approx(expected, rel=1e-10)


def test_data_range_rule_and_shape_checks():
    img = _camera_crop()
    with pytest.raises(InputError, match="data_range"):
        psnr(img, img / 255.0)
    with pytest.raises(InputError, match="shape"):
        psnr(img, img[:-1])
    noisy = _noisy_u8(img, 10)
    # An explicit range overrides the rule.
    assert psnr(img, noisy, data_range=1.0) == pytest.approx(psnr(img, noisy) - 20 * math.log10(255))


@pytest.mark.parametrize("img", [_camera_crop(), _astro_crop()])
def test_ssim_matches_skimage(img):
    noisy = _noisy_u8(img, 25)
    kwargs = dict(data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    if img.ndim == 3:
        kwargs["channel_axis"] = -1
    expected = structural_similarity(img, noisy, **kwargs)
    assert ssim(img, noisy) == pytest.approx(expected, abs=1e-3)
    assert ssim(img / 255.0, noisy / 255.0) == pytest.approx(expected, abs=1e-3)
    assert ssim(img, img) == pytest.approx(1.0)
    assert expected < 0.95  # the pair is genuinely different


def test_ssim_too_small_image():
    with pytest.raises(InputError):
        ssim(np.zeros((5, 5)), np.zeros((5, 5)))


@pytest.mark.parametrize("img", [_camera_crop(), _astro_crop()])
def test_epi_identical_is_one_and_blur_lowers_it(img):
    f = img / 255.0
    blurred = gaussian(f, sigma=1.5, channel_axis=-1 if f.ndim == 3 else None)
    assert epi_ratio(f, f) == pytest.approx(1.0)
    assert epi_correlation(f, f) == pytest.approx(1.0)
    assert epi_ratio(f, blurred) < 0.9
    assert epi_correlation(f, blurred) < 0.95


def test_epi_ratio_hand_computed_and_noise_raises_it():
    ref = np.array([[0.0, 1.0], [0.0, 1.0]])  # |dx| sum = 2, |dy| sum = 0
    test = np.array([[0.0, 0.5], [0.5, 0.5]])  # |dx| = 0.5 + 0, |dy| = 0.5 + 0
    assert epi_ratio(ref, test) == pytest.approx(1.0 / 2.0)
    img = _camera_crop()
    assert epi_ratio(img, _noisy_u8(img, 25)) > 1.0


def test_epi_correlation_is_scale_invariant_and_sign_sensitive():
    f = _camera_crop() / 255.0
    assert epi_correlation(f, 0.5 * f + 0.2) == pytest.approx(1.0)
    assert epi_correlation(f, 1.0 - f) == pytest.approx(-1.0)


def test_gcmse_hand_computed():
    ref = np.array([[0, 255]], np.uint8)
    test = np.array([[0, 0]], np.uint8)
    # One east edge of height 1: both pixels get G = (1 - c) / 4 with
    # c = exp(-(1/0.5)^2) (option 1) or 1 / (1 + (1/0.5)^2) (option 2);
    # GCMSE = G^2 * 1 * N / (2 G) = G since N = 2.
    assert gcmse(ref, test) == pytest.approx((1 - math.exp(-4)) / 4)
    assert gcmse(ref, test, option=2) == pytest.approx((1 - 0.2) / 4)
    value, weight = gcmse(ref, test, return_weight=True)
    assert weight == pytest.approx((1 - math.exp(-4)) / 4)


def test_gcmse_identical_zero_and_grows_with_noise():
    img = _camera_crop()
    assert gcmse(img, img) == 0.0
    values = [gcmse(img, _noisy_u8(img, s)) for s in (5, 15, 40)]
    assert 0 < values[0] < values[1] < values[2]


def test_gcmse_float_and_uint8_agree():
    img = _astro_crop()
    noisy = _noisy_u8(img, 20)
    assert gcmse(img / 255.0, noisy / 255.0) == pytest.approx(gcmse(img, noisy), rel=1e-9)


def test_gcmse_emphasises_edges():
    # Same error energy, once on an edge and once in a flat region.
    ref = np.zeros((16, 16))
    ref[:, 8:] = 1.0
    on_edge = ref.copy()
    on_edge[4, 7] += 0.2
    flat = ref.copy()
    flat[4, 2] += 0.2
    assert gcmse(ref, on_edge) > gcmse(ref, flat) == 0.0


def test_gcmse_bad_arguments():
    img = _camera_crop()
    with pytest.raises(InputError):
        gcmse(img, img, option=3)
    with pytest.raises(InputError):
        gcmse(img, img, kappa=0)


def test_rmse_ignores_nans():
    truth = [1.0, np.nan, 3.0, 4.0]
    estimate = [1.0, 2.0, np.nan, 6.0]
    assert rmse(truth, estimate) == pytest.approx(math.sqrt(2.0))
    assert rmse(np.array([[1.0, 2.0]]), np.array([[2.0, 4.0]])) == pytest.approx(math.sqrt(2.5))
    assert math.isnan(rmse([np.nan], [1.0]))
    with pytest.raises(InputError):
        rmse([1.0, 2.0], [1.0])


def test_evaluate_pair_uses_quantised_images():
    clean = _astro_crop() / 255.0
    same = evaluate_pair(clean, clean + 1e-4)  # identical after quantisation
    assert set(same) == {"psnr", "ssim", "epi_ratio", "epi_correlation", "gcmse"}
    assert same["psnr"] == math.inf
    assert same["ssim"] == pytest.approx(1.0)
    assert same["epi_ratio"] == pytest.approx(1.0)
    assert same["epi_correlation"] == pytest.approx(1.0)
    assert same["gcmse"] == 0.0

    rng = np.random.default_rng(0)
    noisy = clean + rng.normal(0, 0.1, clean.shape)  # unclipped
    res = evaluate_pair(clean, noisy)
    q_clean, q_noisy = quantize_uint8(clean), quantize_uint8(noisy)
    assert res["psnr"] == pytest.approx(peak_signal_noise_ratio(q_clean, q_noisy, data_range=255))
    assert res["gcmse"] == pytest.approx(gcmse(q_clean, q_noisy))
    assert res["psnr"] != pytest.approx(psnr(clean, noisy))
