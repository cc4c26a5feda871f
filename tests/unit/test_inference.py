import pytest
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


#: every device this machine has; CI has the CPU only, a GPU machine runs the same tests on CUDA too
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("device", DEVICES)
def test_tiling_tta_and_refinement_run_on_the_device_of_their_input(device):
    import copy

    from selfdenoise.classical.wiener import refine_estimate
    from selfdenoise.core.tiling import tta_apply

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    on_device = copy.deepcopy(conv).to(device)
    x = torch.rand(1, 3, 45, 38)
    with torch.no_grad():
        outs = {"tiled": (apply_tiled(on_device, x.to(device), tile=24, overlap=6), apply_tiled(conv, x, 24, 6)),
                "tta": (tta_apply(on_device, x.to(device), 8), tta_apply(conv, x, 8))}
    pilot = (x + torch.rand_like(x) * 0.1).clamp(0, 1)
    outs["refined"] = (refine_estimate(x.to(device), pilot.to(device), 1, sigma=0.05),
                       refine_estimate(x, pilot, 1, sigma=0.05))
    for name, (got, ref) in outs.items():
        assert got.device.type == device, name
        torch.testing.assert_close(got.cpu(), ref, atol=1e-5, rtol=1e-5, msg=name)


def _blend_reference(fn, x, sides):
    """The definition of tiled inference: every tile of the grid weighted by the product of its ramps
    (Z, Y, X), the weighted sum over the weight sum."""
    import itertools
    import math

    from selfdenoise.core.tiling import _ramp, _tiles

    spatial = x.shape[2:]
    plans = [_tiles(n, t, o, m) for n, (t, o, m) in zip(spatial, sides)]
    out, weight = None, torch.zeros(1, 1, *spatial)
    for starts in itertools.product(*(s for _, s in plans)):
        region = (slice(None), slice(None), *(slice(s, s + t) for s, (t, _) in zip(starts, plans)))
        ramps = [_ramp(t, o, s == 0, s + t >= n) for s, (t, _), n, (_, o, _) in zip(starts, plans, spatial, sides)]
        wgt = math.prod(r.view(*[-1 if k == a else 1 for k in range(3)]) for a, r in enumerate(ramps))[None, None]
        piece = fn(x[region])
        out = torch.zeros(x.shape[0], piece.shape[1], *spatial) if out is None else out
        out[region] += piece * wgt
        weight[region] += wgt
    return out / weight


def test_a_deep_volume_is_blended_as_the_definition_says_and_streams_in_order():
    """Beyond ``DEPTH_TILE`` planes: runs of planes tiled in-plane, blended along Z, equal to the weighted
    average over the whole tile grid; the streamed form reads only tiles and emits each plane once, in order."""
    from selfdenoise.core.tiling import DEPTH_TILE, _tile_sides, apply_tiled_volume

    torch.manual_seed(0)
    conv = torch.nn.Conv3d(1, 2, 3, padding=1)
    x = torch.rand(1, 1, 2 * DEPTH_TILE + 13, 37, 29)
    with torch.no_grad():
        tiled = apply_tiled(conv, x, tile=16, overlap=4)
        expected = _blend_reference(conv, x, _tile_sides(tuple(x.shape), 16, 4, 1))
    assert tiled.shape == (1, 2, *x.shape[2:]) and (tiled - expected).abs().max() < 1e-6
    emitted, reads = [], []

    def read(region):
        reads.append(region)
        return x[region]

    with torch.no_grad():
        apply_tiled_volume(conv, read, tuple(x.shape), lambda z0, z1, p: emitted.append((z0, z1, p.clone())), 16, 4)
    assert [e[0] for e in emitted] == [0] + [e[1] for e in emitted[:-1]] and emitted[-1][1] == x.shape[2]
    assert len(emitted) > 2 and torch.equal(torch.cat([e[2] for e in emitted], 2), tiled)
    assert max(r[2].stop - r[2].start for r in reads) <= DEPTH_TILE and max(r[3].stop - r[3].start for r in reads) == 16
