"""Neighbor2Neighbor on volumes: the sub-sampler, the 3-D network, volume crops, training on a noisy volume, the
API on volumes and the benchmark on slices of a volume."""
import numpy as np
import pytest
import tifffile
import torch

from selfdenoise import api, bench
from selfdenoise.bench import protocols, runner
from selfdenoise.core import metrics
from selfdenoise.core.errors import InputError
from selfdenoise.core.io import as_volumes, read_image
from selfdenoise.core.tiling import apply_tiled
from selfdenoise.methods import registry
from selfdenoise.methods.ne2ne import _PAIRS
from selfdenoise.methods.ne2ne_3d import seeded_pair_index, subsample_volume
from selfdenoise.nets import build_net
from selfdenoise.training import TrainConfig, from_arrays, from_volumes, train

TINY = {"widths": (8, 8, 8), "crop_depth": 4}


def blobs(depth=7, height=33, width=37, photons=30.0, seed=0):
    """A smooth volume of bright blobs in [0, 1] and its Poisson-noisy version (``photons`` at full scale)."""
    z, y, x = np.mgrid[0:depth, 0:height, 0:width].astype(np.float64)
    clean = 0.1 + 0.8 * np.exp(-((x - 12) ** 2 + (y - 15) ** 2) / 40.0 - (z - 3) ** 2 / 8.0)
    clean += 0.5 * np.exp(-((x - 27) ** 2 + (y - 22) ** 2) / 25.0 - (z - 4) ** 2 / 6.0)
    clean = np.clip(clean, 0, 1).astype(np.float32)
    noisy = np.random.default_rng(seed).poisson(clean * photons) / photons
    return clean, noisy.astype(np.float32)


def test_the_subsampler_takes_two_neighbouring_voxels_of_every_in_plane_cell_of_every_plane():
    b, d, h, w = 2, 7, 34, 38
    x = torch.arange(b * d * h * w, dtype=torch.float32).view(b, 1, d, h, w)  # each voxel its own index
    i1, i2 = seeded_pair_index([11, 12], d, h // 2, w // 2)
    g1, g2 = subsample_volume(x, i1), subsample_volume(x, i2)
    assert g1.shape == g2.shape == (b, 1, d, h // 2, w // 2)
    pos = lambda g: np.unravel_index(g.long().numpy().ravel(), (b, d, h, w))  # noqa: E731
    (b1, z1, y1, x1), (b2, z2, y2, x2) = pos(g1), pos(g2)
    assert (b1 == b2).all() and (z1 == z2).all()  # the same sample and plane
    assert ((y1 // 2 == y2 // 2) & (x1 // 2 == x2 // 2)).all()  # the same 2x2 in-plane cell
    assert (np.abs(y1 - y2) + np.abs(x1 - x2) == 1).all()  # two different, edge-adjacent voxels
    cells = np.stack([z1, y1 // 2, x1 // 2], 1)[b1 == 0]
    assert len({tuple(c) for c in cells}) == d * (h // 2) * (w // 2)  # every cell of every plane, once
    first, second = i1.view(b, d, -1), i2.view(b, d, -1)
    assert not torch.equal(first[:, 0], first[:, 1])  # each plane draws its own choice
    assert torch.equal(seeded_pair_index([11, 12], d, h // 2, w // 2)[1], i2)  # reproducible from the seeds
    assert set(map(tuple, torch.stack([first, second], -1).view(-1, 2).tolist())) == set(map(tuple, _PAIRS.tolist()))


@pytest.mark.parametrize("shape", [(1, 1, 7, 33, 37), (2, 3, 1, 5, 9), (1, 1, 3, 16, 24)])
def test_the_3d_unet_keeps_any_shape_and_starts_as_the_identity(shape):
    net = build_net("unet3d", shape[1], (8, 8, 8)).to(memory_format=torch.channels_last_3d)
    assert net.multiple == 8
    x = torch.rand(shape).contiguous(memory_format=torch.channels_last_3d)
    y = net(x)
    assert y.shape == x.shape and torch.allclose(y, x)  # the last convolution starts at zero: a residual net
    with torch.no_grad():
        net.out.weight.normal_(0, 0.1)
    y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.allclose(y, x)


def test_volume_tiles_blend_back_to_the_whole_volume():
    """In-plane tiles (rounded to the network's multiple) and, beyond ``DEPTH_TILE`` planes, runs of planes."""
    pointwise = lambda t: 2 * t + 1  # noqa: E731
    seen = []
    x = torch.rand(1, 2, 9, 40, 44)
    out = apply_tiled(lambda t: seen.append(t.shape) or pointwise(t), x, tile=16, overlap=4, multiple=8)
    assert torch.allclose(out, pointwise(x), atol=1e-5) and {s[2:] for s in seen} == {(9, 16, 16)}
    seen.clear()
    deep = torch.rand(1, 1, 70, 8, 8)
    out = apply_tiled(lambda t: seen.append(t.shape) or pointwise(t), deep, tile=8)
    assert torch.allclose(out, pointwise(deep), atol=1e-5) and len(seen) == 2 and seen[0][2] <= 64


def test_networks_and_methods_of_different_dimensions_are_not_mixed():
    with pytest.raises(InputError, match="does not take volumes.*unet3d"):
        registry.get_method("ne2ne-3d", net="fast")
    with pytest.raises(InputError, match="does not take images"):
        registry.get_method("ne2ne", net="unet3d")
    with pytest.raises(InputError, match="crop_depth"):
        registry.get_method("ne2ne-3d", crop_depth=0)


def test_training_sub_volumes_are_never_padded_in_plane_by_the_network():
    _, noisy = blobs()
    m = registry.get_method("ne2ne-3d", **TINY)
    model = m.build_model(1)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    m.training_step(from_volumes([noisy]).sample(0, 2, 28, m.data_needs(), seed=1), model, 5, 10)  # 14x14 sub-images
    assert seen and all(h % model.multiple == 0 and w % model.multiple == 0 for h, w in seen), seen
    assert (8, 8) in seen


def test_volume_crops_are_5d_reproducible_and_refused_for_images():
    _, noisy = blobs()
    ts = from_volumes([noisy])
    needs = registry.get_method("ne2ne-3d", crop_depth=16).data_needs()
    batch = ts.sample(3, 2, 16, needs, seed=1)
    assert batch.noisy.shape == (2, 1, 7, 16, 16)  # crop_depth 16 is more than the volume's 7 planes
    assert batch.noisy.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(ts.sample(3, 2, 16, needs, seed=1).noisy, batch.noisy)
    one = ts.sample(3, 1, 16, registry.get_method("ne2ne-3d", crop_depth=4).data_needs(), seed=1).noisy[0, 0]
    windows = [noisy[z:z + 4, i:i + 16, j:j + 16] for z in range(4) for i in range(18) for j in range(22)]
    assert any(np.allclose(np.rot90(np.flip(one.numpy(), -1) if k >= 4 else one.numpy(), -(k % 4), (-2, -1)), w)
               for w in windows for k in range(8))  # a window of the volume, all planes turned alike
    with pytest.raises(InputError, match="trains on volumes"):
        from_arrays([noisy[0]]).check(16, needs, "ne2ne-3d")
    synthetic = from_volumes([blobs()[0]], noise="gauss:5-50").sample(0, 1, 16, needs, seed=0).noisy  # drawn on the fly
    assert synthetic.shape == (1, 1, 7, 16, 16) and torch.isfinite(synthetic).all()


def test_a_few_training_steps_beat_the_noisy_volume():
    clean, noisy = blobs(photons=20.0)
    method = registry.get_method("ne2ne-3d", widths=(16, 16, 16), crop_depth=8, gamma=1.0)
    result = train(method, from_volumes([noisy]), TrainConfig(steps=100, crop=32, batch=2, lr=3e-3, schedule="constant",
                                                              betas=(0.9, 0.99), clip=0.1, seed=0))
    first, last = result.history[0]["rec"], result.history[-1]["rec"]
    out = method.denoise(result.model, torch.from_numpy(noisy)[None, None])[0, 0].clamp(0, 1).numpy()
    before, after = metrics.psnr(clean, noisy, 1.0), metrics.psnr(clean.reshape(-1, 37), out.reshape(-1, 37), 1.0)
    assert last < first and after > before + 1.5, (first, last, before, after)


def test_the_api_denoises_volumes_with_a_saved_model_and_refuses_images(tmp_path):
    _, noisy = blobs()
    r = api.train([noisy], "ne2ne-3d", tmp_path / "m.sdm", steps=2, batch=1, crop=16, **TINY)
    model = api.load_model(r.path)
    assert model.volumetric and model.metadata["config"]["crop_depth"] == 4
    out = api.denoise(noisy, model=r.path)
    assert out.shape == noisy.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, r.model.denoise(noisy), atol=1e-6)  # the file reloads to the same network
    assert api.denoise(noisy[..., None], model=model, tta=2).shape == noisy.shape + (1,)
    with pytest.raises(InputError, match="a 3-D model denoises volumes .* not a 2-D image"):
        api.denoise(noisy[0], model=model)
    with pytest.raises(InputError, match=r"a volume is \(Z, Y, X\)"):
        api.train([noisy[0]], "ne2ne-3d", steps=1, batch=1, crop=16, **TINY)


def test_volumes_are_read_by_their_axes(tmp_path):
    stack = np.random.default_rng(0).random((2, 5, 12, 14)).astype(np.float32)  # T, Z, Y, X
    np.save(tmp_path / "tz.npy", stack)
    arr, info = read_image(tmp_path / "tz.npy", axes="TZYX")
    volumes = as_volumes(arr, info, "tz.npy")
    assert volumes.shape == (2, 5, 12, 14, 1) and np.allclose(volumes[1, ..., 0], stack[1])
    arr, info = read_image(tmp_path / "tz.npy", axes="TCYX")
    with pytest.raises(InputError, match="axes TCYX have no Z"):
        as_volumes(arr, info, "tz.npy")
    np.save(tmp_path / "z.npy", stack.reshape(10, 12, 14))
    arr, info = read_image(tmp_path / "z.npy")  # no axes: one volume, its pages the planes
    assert as_volumes(arr, info).shape == (1, 10, 12, 14, 1)


def test_a_folder_of_volumes_reports_every_unreadable_file_at_once(tmp_path):
    from selfdenoise.training import load_volumes

    np.save(tmp_path / "a.npy", blobs()[1])
    (tmp_path / "b.tif").write_bytes(b"not a tiff")
    np.save(tmp_path / "c.npy", blobs()[1][0])  # a 2-D image: no volume
    with pytest.raises(InputError, match=r"2 of 3 training file\(s\) cannot be read: .*b\.tif.*c\.npy"):
        load_volumes(tmp_path)
    (tmp_path / "b.tif").unlink()
    (tmp_path / "c.npy").unlink()
    assert load_volumes(tmp_path).names == ["a.npy"]


def test_the_benchmark_denoises_the_volume_once_and_scores_its_slices_as_the_2d_methods(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "git_commit", lambda: "0" * 40)
    (tmp_path / "nuclei3d").mkdir()
    z, y, x = np.mgrid[0:60, 0:24, 0:20]
    volume = (20000 + 15000 * np.sin(x / 3.0 + z / 9.0) * np.cos(y / 4.0)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "nuclei3d" / "nuclei.tif", volume)
    options = {"ne2ne-3d": {**TINY, "crop": 16, "batch": 1}}
    r = bench.run_protocol("poisson-3d", tmp_path, ["ne2ne-3d"], out_dir=tmp_path / "out", progress=False,
                           baselines=False, limit=2, train={"steps": 2}, method_options=options)
    res = r["results"]["ne2ne-3d"]
    assert [p["name"] for p in res["per_image"]] == ["nuclei_z030", "nuclei_z031"] and res["metric"] == "float"
    assert res["training"]["data"]["layout"].endswith("(transductive), whole")
    ts = bench.PROTOCOLS["poisson-3d"].test_sets[0]
    clean, noisy = protocols.test_volume(ts, protocols.find_test_images(tmp_path, ts)[0], 0)
    out = np.clip(api.load_model(tmp_path / "out" / "poisson-3d" / "ne2ne-3d.sdm").denoise(noisy), 0, 1)
    assert res["per_image"][1]["psnr"] == pytest.approx(metrics.evaluate_pair(clean[31], out[31], "float")["psnr"])
    row = res["per_image"][0]
    assert row["seconds"] == pytest.approx(row["volume_seconds"] / 60) and "planes" in res["seconds_per_image_basis"]
    with pytest.raises(InputError, match="denoises volumes"):
        bench.run_protocol("gauss25-color", tmp_path, ["ne2ne-3d"], out_dir=tmp_path / "x", progress=False,
                           train={"steps": 1})
    pairs = protocols.protocol_training_set(bench.PROTOCOLS["poisson-3d"], tmp_path, registry.get_method("n2n").data_needs())
    assert len(pairs.groups) == 59 and pairs.max_realisations() == 2  # Noise2Noise: neighbouring planes as pairs
    assert torch.equal(pairs.groups[4][1], pairs.groups[5][0]) and pairs.layout.startswith("nuclei")
