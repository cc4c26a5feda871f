import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from selfdenoise.core import io
from selfdenoise.core.errors import InputError


def roundtrip(tmp_path, name, arr, **save):
    p = tmp_path / name
    if name.endswith(".npy"):
        np.save(p, arr)
    elif name.endswith((".tif", ".tiff")):
        tifffile.imwrite(p, arr, **save)
    else:
        Image.fromarray(arr).save(p)
    img, info = io.read_image(p)
    out = tmp_path / ("out_" + name)
    io.write_image(out, img, info)
    return img, info, out


@pytest.mark.parametrize("name", ["a.png", "a.tif", "a.bmp"])
def test_uint8_rgb_roundtrip_is_exact(tmp_path, name):
    arr = np.random.default_rng(0).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    img, info, out = roundtrip(tmp_path, name, arr)
    assert img.shape == (13, 17, 3) and img.dtype == np.float32 and 0 <= img.min() <= img.max() <= 1
    back, _ = io.read_image(out)
    assert np.array_equal(np.round(back * 255).astype(np.uint8), arr)


def test_16bit_gray_png_and_tiff_stay_16bit(tmp_path):
    arr = np.random.default_rng(1).integers(0, 65536, (11, 9), dtype=np.uint16)
    for name in ("g.png", "g.tif"):
        img, info, out = roundtrip(tmp_path, name, arr)
        assert img.shape == (11, 9, 1) and info.dtype == "uint16" and info.gray_2d
        written = np.asarray(Image.open(out)) if name.endswith(".png") else tifffile.imread(out)
        assert written.dtype in (np.uint16, np.int32) and written.shape == (11, 9)
        assert np.array_equal(written.astype(np.uint16), arr)


def test_16bit_rgb_tiff(tmp_path):
    arr = np.random.default_rng(2).integers(0, 65536, (10, 12, 3), dtype=np.uint16)
    img, info, out = roundtrip(tmp_path, "c.tif", arr)
    assert info.dtype == "uint16" and img.shape == (10, 12, 3)
    assert np.array_equal(tifffile.imread(out), arr)


def test_rgba_and_palette_converted_with_warning(tmp_path):
    rgba = np.random.default_rng(3).integers(0, 256, (8, 8, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    with pytest.warns(UserWarning, match="alpha"):
        img, _ = io.read_image(tmp_path / "rgba.png")
    assert img.shape == (8, 8, 3)
    Image.fromarray(rgba[..., :3]).convert("P").save(tmp_path / "pal.png")
    with pytest.warns(UserWarning, match="palette"):
        img, _ = io.read_image(tmp_path / "pal.png")
    assert img.shape == (8, 8, 3)


def test_planar_rgb_tiff_is_one_colour_image(tmp_path):
    arr = np.random.default_rng(6).integers(0, 256, (3, 10, 11), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "p.tif", arr, photometric="rgb", planarconfig="separate")
    img, info = io.read_image(tmp_path / "p.tif")
    assert not info.stack and img.shape == (10, 11, 3)
    assert np.array_equal(np.round(img * 255).astype(np.uint8), np.moveaxis(arr, 0, -1))


def test_float_npy_keeps_its_range(tmp_path):
    arr = np.linspace(-3.0, 500.0, 8 * 9, dtype=np.float64).reshape(8, 9)
    img, info, out = roundtrip(tmp_path, "f.npy", arr)
    assert img.min() == 0.0 and img.max() == pytest.approx(1.0)
    back = np.load(out)
    assert back.dtype == np.float64 and back.shape == (8, 9)
    np.testing.assert_allclose(back, arr, rtol=1e-5, atol=1e-4)


def test_multipage_tiff_is_a_stack(tmp_path):
    arr = np.random.default_rng(4).integers(0, 256, (3, 10, 11), dtype=np.uint8)
    img, info, out = roundtrip(tmp_path, "s.tif", arr, photometric="minisblack")
    assert info.stack and img.shape == (3, 10, 11, 1)
    assert np.array_equal(tifffile.imread(out), arr)


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
])
def test_bad_files(tmp_path, content, match):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match) as e:
        io.read_image(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_truncated_png_and_tiff(tmp_path):
    arr = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for name in ("t.png", "t.tif"):
        p = tmp_path / name
        Image.fromarray(arr).save(p) if name.endswith("png") else tifffile.imwrite(p, arr)
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
        with pytest.raises(InputError, match="corrupt|truncated"):
            io.read_image(p)


def test_missing_tiny_and_nan(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        io.read_image(tmp_path / "nope.png")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(tmp_path / "one.png")
    with pytest.raises(InputError, match="1x1"):
        io.read_image(tmp_path / "one.png")
    bad = np.ones((8, 8), np.float32)
    bad[2, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(InputError, match="NaN"):
        io.read_image(tmp_path / "nan.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 5), np.float32))
    with pytest.raises(InputError, match="no pixels"):
        io.read_image(tmp_path / "empty.npy")


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    img = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(InputError, match="does not exist"):
        io.write_image(tmp_path / "missing" / "x.png", img)
    from PIL import Image as PILImage

    def boom(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PILImage.Image, "save", boom)
    with pytest.raises(InputError, match="cannot write"):
        io.write_image(tmp_path / "x.png", img)
    assert os.listdir(tmp_path) == []


def test_temporary_files_of_killed_writers_are_swept_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".x.{io._HOST}-{dead.pid}.abc123.png.part"  # what a kill -9 mid-write leaves
    live = tmp_path / f".x.{io._HOST}-{os.getpid()}.def456.png.part"  # a write in progress
    remote = tmp_path / f".x.otherhost-{dead.pid}.ghi789.png.part"  # another machine's, on a shared folder
    other = tmp_path / f".y.{io._HOST}-{dead.pid}.jkl012.png.part"  # another output's: swept when it is written
    for f in (stale, live, remote, other):
        f.write_bytes(b"half")
    io.write_image(tmp_path / "x.png", np.zeros((8, 8, 3), np.float32))
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(["x.png", live.name, remote.name, other.name])


def test_a_kept_previous_file_moves_only_when_the_new_one_is_complete(tmp_path):
    path, previous = tmp_path / "c.bin", tmp_path / "c.bin.previous"
    io.atomic_write(path, lambda tmp: open(tmp, "wb").write(b"one"), previous=previous)
    assert path.read_bytes() == b"one" and not previous.exists()

    def killed(tmp):
        open(tmp, "wb").write(b"tw")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        io.atomic_write(path, killed, previous=previous)
    assert path.read_bytes() == b"one" and not previous.exists()
    io.atomic_write(path, lambda tmp: open(tmp, "wb").write(b"two"), previous=previous)
    assert path.read_bytes() == b"two" and previous.read_bytes() == b"one"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["c.bin", "c.bin.previous"]


def test_list_images(tmp_path):
    for n in ("b.png", "a.tif", "notes.txt"):
        (tmp_path / n).write_bytes(b"x")
    assert [p.name for p in io.list_images(tmp_path)] == ["a.tif", "b.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        io.list_images(tmp_path / "empty")


def test_written_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        io.write_image(tmp_path / "p.png", np.zeros((8, 8, 3), np.float32))
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "p.png").st_mode & 0o777) == 0o644


@pytest.mark.parametrize("dtype, scale, offset", [("uint8", 1.0, 0.0), ("uint16", 1.0, 0.0), ("int16", 300.0, -20.0),
                                                   ("float32", 2.5, -1.0)])
def test_writing_back_converts_in_chunks_exactly_as_at_once(monkeypatch, dtype, scale, offset):
    from selfdenoise.core import io

    arr = np.random.default_rng(4).uniform(-0.1, 1.1, (2, 13, 11, 3)).astype(np.float32)
    info = io.ImageInfo(dtype=dtype, scale=scale, offset=offset, stack=True, channels=3)
    whole = io._convert_back(arr, info)
    monkeypatch.setattr(io, "CONVERT_CHUNK", 40)  # a few rows at a time
    chunked = io.from_unit_range(arr, info)
    assert chunked.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(chunked, whole)
    gray = io.ImageInfo(dtype=dtype, scale=scale, offset=offset, gray_2d=True, channels=1)
    np.testing.assert_array_equal(io.from_unit_range(arr[0, ..., :1], gray), whole[0, ..., 0])


def test_an_npy_with_a_short_last_axis_is_refused_not_read_as_a_stack(tmp_path):
    np.save(tmp_path / "hwc.npy", np.zeros((40, 40, 5), np.float32))
    with pytest.raises(InputError, match=r"hwc.npy: shape \(40, 40, 5\): the last axis looks like 5 channels"):
        io.read_image(tmp_path / "hwc.npy")
    np.save(tmp_path / "stack.npy", np.zeros((5, 40, 40), np.float32))
    img, info = io.read_image(tmp_path / "stack.npy")
    assert info.stack and img.shape == (5, 40, 40, 1)


def test_arrays_follow_the_api_contract():
    import selfdenoise

    rng = np.random.default_rng(5)
    unit = rng.uniform(0, 1, (24, 26, 3)).astype(np.float32)
    with pytest.raises(InputError, match=r"float values span .*not \[0, 1\]"):
        selfdenoise.denoise(unit * 255, "nlm", sigma=20)
    with pytest.raises(InputError, match="int32 values have no standard range"):
        selfdenoise.denoise((unit * 4095).astype(np.int32), "nlm", sigma=20)
    bright = 0.9 + rng.normal(0, 50 / 255, (64, 64)).astype(np.float32)  # strong noise on white: 0.1..1.7
    assert selfdenoise.denoise(bright, "nlm", sigma=50).shape == (64, 64)
    in_255 = selfdenoise.denoise(unit * 255, "nlm", sigma=20, data_range=255)
    np.testing.assert_allclose(in_255, selfdenoise.denoise(unit, "nlm", sigma=20) * 255, rtol=1e-5, atol=1e-3)
    twelve_bit = selfdenoise.denoise((unit[..., 0] * 4000 - 100).astype(np.int16), "nlm", sigma=20, data_range=(-100, 3900))
    assert twelve_bit.shape == (24, 26) and -100 <= twelve_bit.min() and twelve_bit.max() <= 3900
    for bad in ((5, 1), "wide", (0, np.inf)):
        with pytest.raises(InputError, match="data_range"):
            selfdenoise.denoise(unit, "nlm", data_range=bad)
    noisy = unit + rng.normal(0, 0.1, unit.shape).astype(np.float32)  # a little outside [0, 1]: fine
    assert selfdenoise.denoise(noisy, "nlm", sigma=20).shape == unit.shape


def test_progress_in_a_log_is_plain_lines(monkeypatch):
    import io as stdio
    import sys

    from selfdenoise.core.progress import tqdm

    log = stdio.StringIO()  # not a terminal
    monkeypatch.setattr(sys, "stderr", log)
    for _ in tqdm(range(4), desc="images", mininterval=0):
        pass
    text = log.getvalue()
    assert "\r" not in text and "images" in text and text.endswith("\n")
    assert all(line.startswith("images") for line in text.splitlines())
    log = stdio.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    bar = tqdm(total=2000, desc="train")  # a training loop: its loss set at every step
    for step in range(2000):
        bar.update(1)
        bar.set_postfix(loss=f"{1 / (step + 1):.3g}")
    bar.close()
    assert 1 <= len(log.getvalue().splitlines()) <= 3  # the first line, perhaps one more, the last


# ------------------------------------------------------------------------------------ explicit axes
@pytest.mark.parametrize("axes, shape, read_as", [
    ("ZYX", (5, 24, 20), (5, 24, 20, 1)),        # a volume: slices
    ("YXC", (24, 20, 5), (5, 24, 20, 1)),        # five channels: each denoised on its own, none dropped
    ("CYX", (2, 24, 20), (2, 24, 20, 1)),        # two channels are not gray + alpha
    ("TCYX", (2, 3, 24, 20), (2, 24, 20, 3)),    # a colour time-lapse
    ("CZYX", (2, 4, 24, 20), (8, 24, 20, 1)),    # channels apart, then depth
    ("XY", (20, 24), (24, 20, 1)),               # transposed
])
def test_named_axes_are_read_as_slices_and_channels_and_written_back_as_given(tmp_path, axes, shape, read_as):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 65536, shape, dtype=np.uint16)
    np.save(tmp_path / "a.npy", arr)
    img, info = io.read_image(tmp_path / "a.npy", axes=axes.lower())
    assert img.shape == read_as and info.axes == axes
    io.write_image(tmp_path / "b.npy", img, info)
    back = np.load(tmp_path / "b.npy")
    assert back.dtype == np.uint16 and np.array_equal(back, arr)
    io.write_image(tmp_path / "b.tif", img, info)
    assert np.array_equal(tifffile.imread(tmp_path / "b.tif"), arr)  # the same layout, not reordered


def test_ome_tiff_axes_are_read_from_its_metadata_and_kept_on_the_way_out(tmp_path):
    arr = np.random.default_rng(1).integers(0, 4096, (3, 2, 24, 20), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "z.ome.tif", arr, ome=True, metadata={"axes": "ZCYX"}, photometric="minisblack")
    img, info = io.read_image(tmp_path / "z.ome.tif")
    assert info.axes == "ZCYX" and info.ome and img.shape == (6, 24, 20, 1)  # two channels apart, three slices
    io.write_image(tmp_path / "out.ome.tif", img, info)
    with tifffile.TiffFile(tmp_path / "out.ome.tif") as tf:
        assert tf.is_ome and tf.series[0].axes == "ZCYX" and np.array_equal(tf.series[0].asarray(), arr)


@pytest.mark.parametrize("axes, match", [("YXQ", "unknown letter Q"), ("YYX", "appears twice"), ("ZX", "Y and X"),
                                         ("YX", "do not match the array's 3 dimensions")])
def test_axes_that_cannot_describe_the_array_are_one_line_errors(tmp_path, axes, match):
    np.save(tmp_path / "a.npy", np.zeros((4, 24, 20), np.float32))
    with pytest.raises(InputError, match=f"a.npy: axes {axes}.*{match}"):
        io.read_image(tmp_path / "a.npy", axes=axes)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "p.png")
    with pytest.raises(InputError, match="--axes is for TIFF and NPY"):
        io.read_image(tmp_path / "p.png", axes="YX")
