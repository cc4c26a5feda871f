import torch

from selfdenoise.core.tiling import apply_tiled


def test_tiling_matches_whole_image_for_a_local_operator():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    x = torch.rand(1, 3, 75, 53)
    with torch.no_grad():
        whole = conv(x)
    tiled = apply_tiled(conv, x, tile=24, overlap=6)
    # Away from tile borders a 3x3 operator gives the same values; blending keeps seams within
    # the receptive field, so the difference stays small everywhere.
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 0.2
    assert (tiled - whole).abs().mean() < 0.01


def test_identity_is_exact_and_small_images_skip_tiling():
    x = torch.rand(2, 1, 41, 67)
    assert torch.allclose(apply_tiled(lambda t: t, x, tile=16, overlap=4), x, atol=1e-6)
    calls = []
    apply_tiled(lambda t: calls.append(t.shape) or t, x, tile=None)
    assert calls == [x.shape]


def test_tta_averages_only_the_given_modes():
    from selfdenoise.core.augment import AUGMENT_MODES
    from selfdenoise.core.tiling import tta_apply

    x = torch.rand(1, 1, 6, 10)
    aspect = lambda t: t * (t.shape[-1] / t.shape[-2])  # sees whether its input was turned
    torch.testing.assert_close(tta_apply(aspect, x, 4, AUGMENT_MODES["flips"]), x * 10 / 6)
    torch.testing.assert_close(tta_apply(aspect, x, 2), (x * 10 / 6 + x * 6 / 10) / 2)  # a quarter turn
    torch.testing.assert_close(tta_apply(lambda t: t, x, 8), x)
