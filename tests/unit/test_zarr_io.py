"""OME-Zarr / Zarr in and out, denoised out of core: equal to the in-memory path, bounded memory, atomic."""
import json
import os
import sys
import tracemalloc

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from click.testing import CliRunner  # noqa: E402

from selfdenoise import api  # noqa: E402
from selfdenoise.cli import main  # noqa: E402
from selfdenoise.core import zarr_io  # noqa: E402
from selfdenoise.core.errors import InputError, MissingDependencyError  # noqa: E402


def volume(shape=(7, 37, 41), seed=0) -> np.ndarray:
    """Odd-sized uint16: smooth structure plus noise."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    smooth = 0.5 + 0.3 * np.sin(grids[-1] / 5.0) * np.cos(grids[-2] / 7.0)
    return np.clip((smooth + rng.normal(0, 0.08, shape)) * 65535, 0, 65535).astype(np.uint16)


def plain_zarr(path, data, chunks, zarr_format=3):
    z = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=data.dtype, zarr_format=zarr_format)
    z[:] = data
    return path


def in_memory(tmp_path, data, axes, **kwargs) -> np.ndarray:
    """The in-memory result: ``denoise_file`` on the same array as an NPY."""
    np.save(tmp_path / "ref_in.npy", data)
    api.denoise_file(tmp_path / "ref_in.npy", tmp_path / "ref_out.npy", axes=axes, **kwargs)
    return np.load(tmp_path / "ref_out.npy")


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_round_trip_keeps_axes_dtype_chunks_and_scale(tmp_path, model_file, version):
    ome_writer = pytest.importorskip("ome_zarr.writer")
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    data = volume()
    fmt = FormatV04() if version == "0.4" else FormatV05()
    group = zarr.open_group(str(tmp_path / "in.ome.zarr"), mode="w", zarr_format=fmt.zarr_format)
    ome_writer.write_image(data, group, axes="zyx", fmt=fmt, scale={"z": 2.0, "y": 0.5, "x": 0.5},
                           scale_factors=(2,), storage_options={"chunks": (3, 16, 16)})
    r = api.denoise_file(tmp_path / "in.ome.zarr", tmp_path / "out.ome.zarr", model=model_file, tile=16)
    assert r["slices"] == 7 and r["blocks"] == 3
    node = list(Reader(parse_url(str(tmp_path / "out.ome.zarr")))())[0]
    source = list(Reader(parse_url(str(tmp_path / "in.ome.zarr")))())[0]
    assert node.metadata["axes"] == source.metadata["axes"]
    assert node.metadata["coordinateTransformations"][0] == source.metadata["coordinateTransformations"][0]
    assert len(node.data) == 1  # the full-resolution level
    out_group = zarr.open_group(str(tmp_path / "out.ome.zarr"), mode="r")
    level0 = out_group[zarr_io._multiscale(dict(out_group.attrs))["datasets"][0]["path"]]
    assert level0.dtype == np.uint16 and level0.chunks == (3, 16, 16) and level0.metadata.zarr_format == fmt.zarr_format
    ref = in_memory(tmp_path, data, "ZYX", model=api.load_model(model_file), tile=16)
    np.testing.assert_array_equal(level0[:], ref)
    with pytest.raises(InputError, match="--axes TYX contradicts the file's OME axes ZYX"):
        api.denoise_file(tmp_path / "in.ome.zarr", tmp_path / "x.ome.zarr", model=model_file, axes="TYX")


def test_plain_zarr_with_axes_and_an_ome_output_from_it(tmp_path, model_file):
    data = volume((2, 5, 24, 19))
    plain_zarr(tmp_path / "in.zarr", data, (1, 2, 10, 10), zarr_format=2)
    api.denoise_file(tmp_path / "in.zarr", tmp_path / "out.zarr", model=model_file, axes="TZYX")
    out = zarr.open(str(tmp_path / "out.zarr"), mode="r")
    assert isinstance(out, zarr.Array) and out.metadata.zarr_format == 2 and out.chunks == (1, 2, 10, 10)
    np.testing.assert_array_equal(out[:], in_memory(tmp_path, data, "TZYX", model=api.load_model(model_file)))
    api.denoise_file(tmp_path / "in.zarr", tmp_path / "out.ome.zarr", model=model_file, axes="TZYX")
    attrs = dict(zarr.open_group(str(tmp_path / "out.ome.zarr"), mode="r").attrs)
    assert [a["name"] for a in attrs["multiscales"][0]["axes"]] == ["t", "z", "y", "x"]
    with pytest.raises(InputError, match="not in OME-NGFF order"):
        api.denoise_file(tmp_path / "in.zarr", tmp_path / "bad.ome.zarr", model=model_file, axes="ZTYX")
    assert not (tmp_path / "bad.ome.zarr").exists()


def test_ambiguous_zarr_is_refused_in_one_line(tmp_path, model_file):
    plain_zarr(tmp_path / "in.zarr", volume((5, 16, 16)), (2, 16, 16))
    with pytest.raises(InputError, match="in.zarr: shape .* needs --axes"):
        api.denoise_file(tmp_path / "in.zarr", tmp_path / "out.zarr", model=model_file)
    r = CliRunner().invoke(main, ["denoise", str(tmp_path / "in.zarr"), "-o", str(tmp_path / "out.zarr"),
                                  "--model", str(model_file), "-q"])
    assert r.exit_code == 2 and "needs --axes" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.zarr").exists()
    r = CliRunner().invoke(main, ["denoise", str(tmp_path / "in.zarr"), "-o", str(tmp_path / "out.tif"),
                                  "--model", str(model_file), "--axes", "ZYX", "-q"])
    assert r.exit_code == 2 and "written as .zarr" in r.stderr
    r = CliRunner().invoke(main, ["denoise", str(tmp_path / "in.zarr"), "-o", str(tmp_path / "out.zarr"),
                                  "--model", str(model_file), "--axes", "ZYX", "-q"])
    assert r.exit_code == 0, r.stderr
    assert zarr.open(str(tmp_path / "out.zarr"), mode="r").shape == (5, 16, 16)


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_out_of_core_equals_in_memory_with_chunks_smaller_in_every_dimension(tmp_path, model_file, dtype):
    data = volume((5, 37, 41))
    data = data if dtype == "uint16" else (data / 65535.0 * 3.0 - 1.0).astype(np.float32)  # a float range
    plain_zarr(tmp_path / "in.zarr", data, (2, 16, 16))
    trained = api.load_model(model_file)
    api.denoise_zarr(tmp_path / "in.zarr", tmp_path / "out.zarr", model=trained, axes="ZYX", tile=16)
    out = zarr.open(str(tmp_path / "out.zarr"), mode="r")[:]
    assert out.dtype == data.dtype
    ref = in_memory(tmp_path, data, "ZYX", model=trained, tile=16)
    np.testing.assert_allclose(out.astype(np.float64), ref.astype(np.float64), atol=1e-5, rtol=0)
    by_slice = np.stack([api.denoise(s, model=trained, tile=16) for s in data]) if dtype == "uint16" else None
    if by_slice is not None:  # api.denoise on each plane, in [0, 1]
        np.testing.assert_allclose(out / 65535.0, by_slice, atol=0.5 / 65535 + 1e-6)


def test_independent_channels_and_a_classical_method(tmp_path):
    data = volume((2, 3, 20, 22))[:, :2]  # two channels: each denoised on its own
    data = np.ascontiguousarray(data.transpose(1, 0, 2, 3))  # CZYX
    plain_zarr(tmp_path / "in.zarr", data, (1, 2, 8, 8))
    api.denoise_zarr(tmp_path / "in.zarr", tmp_path / "out.zarr", "nlm", axes="CZYX", sigma=10)
    ref = in_memory(tmp_path, data, "CZYX", method="nlm", sigma=10)
    np.testing.assert_array_equal(zarr.open(str(tmp_path / "out.zarr"), mode="r")[:], ref)


def test_blocks_hold_one_chunk_of_planes_and_memory_stays_bounded(tmp_path, monkeypatch):
    data = volume((512, 64, 64))  # 4 MB; a block is 32 kB (peak measured: about 300 kB, whatever the depth)
    plain_zarr(tmp_path / "in.zarr", data, (4, 32, 32))
    seen = []
    block = zarr_io.denoise_block

    def spy(source, target, region, fn):
        seen.append(tuple(s.stop - s.start for s in region))
        return block(source, target, region, fn)

    monkeypatch.setattr(zarr_io, "denoise_block", spy)
    monkeypatch.setattr(api, "_frame_denoiser", lambda method, kwargs: lambda frame: frame)  # the I/O path alone
    tracemalloc.start()
    try:
        api.denoise_zarr(tmp_path / "in.zarr", tmp_path / "out.zarr", "nlm", axes="ZYX")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(seen) == 128 and set(seen) == {(4, 64, 64)}  # one chunk of whole planes, never more
    assert peak < data.nbytes / 10, f"peak {peak} bytes for a {data.nbytes}-byte volume"
    np.testing.assert_array_equal(zarr.open(str(tmp_path / "out.zarr"), mode="r")[:], data)


def test_an_interrupted_run_leaves_nothing_under_the_final_name(tmp_path, model_file, monkeypatch):
    stale = tmp_path / f".out.{zarr_io.io._HOST}-999999999.abc.zarr.part"  # a killed writer's temporary store
    (stale / "c").mkdir(parents=True)
    plain_zarr(tmp_path / "in.zarr", volume((6, 16, 16)), (2, 16, 16))
    calls = []
    block = zarr_io.denoise_block

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return block(*args)

    monkeypatch.setattr(zarr_io, "denoise_block", interrupted)
    with pytest.raises(KeyboardInterrupt):
        api.denoise_zarr(tmp_path / "in.zarr", tmp_path / "out.zarr", model=model_file, axes="ZYX")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr"]
    monkeypatch.setattr(zarr_io, "denoise_block", block)
    for _ in range(2):  # an existing output is replaced
        api.denoise_zarr(tmp_path / "in.zarr", tmp_path / "out.zarr", model=model_file, axes="ZYX")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr", "out.zarr"]
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match="not a Zarr store"):
        api.denoise_zarr(tmp_path / "in.zarr", tmp_path / "folder", model=model_file, axes="ZYX")


def test_methods_that_fit_each_image_are_refused_on_large_stores(tmp_path, monkeypatch):
    plain_zarr(tmp_path / "in.zarr", volume((5, 16, 16)), (5, 16, 16))
    monkeypatch.setattr(api, "FIT_FRAMES_LIMIT", 4)
    with pytest.raises(InputError, match="in.zarr: method 'zero-shot' fits each of its 5 images") as e:
        api.denoise_zarr(tmp_path / "in.zarr", tmp_path / "out.zarr", axes="ZYX")
    assert "\n" not in str(e.value) and not (tmp_path / "out.zarr").exists()


def test_bad_stores_fail_in_one_line(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.attrs["note"] = json.dumps({})
    for name, message in [("empty.zarr", "not a readable Zarr store"), ("group.zarr", "without OME-NGFF"),
                          ("missing.zarr", "no such")]:
        with pytest.raises(InputError, match=message) as e:
            api.denoise_zarr(tmp_path / name, tmp_path / "out.zarr", "nlm", axes="ZYX")
        assert name in str(e.value) and "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "out.zarr")


def test_without_zarr_the_extra_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "zarr", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'selfdenoise\[zarr\]'"):
        api.denoise_zarr(tmp_path, tmp_path / "out.zarr", "nlm")


@pytest.mark.parametrize("refine, times, depth, run", [(0, 2, 21, 8), (1, 1, 9, 4)])  # Wiener: ~0.5 s a plane
def test_a_model_of_volumes_streams_each_zyx_volume_and_equals_in_memory(tmp_path, volume_model, monkeypatch, refine,
                                                                         times, depth, run):
    """TZYX, chunks smaller in every dimension, volumes deeper than a run of planes (``DEPTH_TILE`` made small
    here): the out-of-core result is the in-memory one exactly; no read spans more than a run of planes or
    more than a tile in-plane, and planes are written in order, each once."""
    from selfdenoise.core import tiling

    monkeypatch.setattr(tiling, "DEPTH_TILE", run)
    monkeypatch.setattr(tiling, "DEPTH_OVERLAP", run // 4)
    data = np.stack([volume((depth, 37, 41), seed=s) for s in range(times)])
    plain_zarr(tmp_path / "in.zarr", data, (1, 4, 16, 16))
    source = zarr_io.open_zarr(tmp_path / "in.zarr", "TZYX")
    reads, writes, volume_io = [], [], zarr_io.volume_io

    def spy(source, target, key):
        read, write = volume_io(source, target, key)
        return (lambda z, y, x: reads.append((z, y, x)) or read(z, y, x),
                lambda z, planes: writes.append((key[0], z.start, z.stop)) or write(z, planes))

    monkeypatch.setattr(zarr_io, "volume_io", spy)
    r = api.denoise_zarr(tmp_path / "in.zarr", tmp_path / "out.zarr", model=volume_model, axes="TZYX", tile=16,
                         refine=refine)
    assert r["blocks"] == times and zarr_io.volumes(source) == [(t, None, None, None) for t in range(times)]
    out = zarr.open(str(tmp_path / "out.zarr"), mode="r")[:]
    ref = in_memory(tmp_path, data, "TZYX", model=volume_model, tile=16, refine=refine)
    np.testing.assert_array_equal(out, ref)
    assert abs(out.astype(float) - data).mean() > 100  # it did denoise
    for t in range(times):
        spans = [(a, b) for k, a, b in writes if k == t]
        assert spans[0][0] == 0 and spans[-1][1] == depth and all(p[1] == q[0] for p, q in zip(spans, spans[1:]))
    assert len(spans) > 2 and max(z.stop - z.start for z, _, _ in reads) <= run
    assert max(y.stop - y.start for _, y, _ in reads if y.stop is not None) <= 16


def test_models_of_volumes_refuse_stores_without_z(tmp_path, volume_model):
    plain_zarr(tmp_path / "in.zarr", volume((3, 37, 41)), (1, 16, 16))
    with pytest.raises(InputError, match=r"in.zarr.*axes TYX have no Z"):
        api.denoise_zarr(tmp_path / "in.zarr", tmp_path / "out.zarr", model=volume_model, axes="TYX")
    assert not (tmp_path / "out.zarr").exists()
