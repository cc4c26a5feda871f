"""bioimage.io export: the package passes bioimageio.core's own test, offline, and reproduces selfdenoise."""
import socket
import sys
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from selfdenoise import export
from selfdenoise.cli import main
from selfdenoise.core.errors import InputError, MissingDependencyError
from selfdenoise.methods import registry
from selfdenoise.modelfile import load_model, save_model

bmz_core = pytest.importorskip("bioimageio.core")  # the bioimageio extra
load_description = pytest.importorskip("bioimageio.spec").load_description
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
CONFIG = {"net": "fast", "widths": [8, 16, 16]}  # a tiny UNet: exports in about a second
EXTRA = {"noise": "gauss:25", "data": {"layout": "single", "images": 3, "sources": ["synthetic gradients"]},
         "train": {"steps": 10, "preset": "fast"}}


def saved(path, channels=1, method="ne2ne", config=CONFIG):
    m = registry.get_method(method, **config)
    model = m.build_model(channels)
    with torch.no_grad():
        for p in model.parameters():  # not an identity: a broken export would show
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.05)
    return save_model(path, model, method=method, channels=channels, config=m.config(), extra=EXTRA)


def offline(mp):
    """Any network connection fails (bioimage.io validation must not need one)."""
    def refuse(*args, **kwargs):
        raise OSError("network access during the bioimage.io export")

    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bmz")
    path = saved(folder / "m.sdm")
    with pytest.MonkeyPatch.context() as mp:
        offline(mp)
        result = export.export_model(path, None, "bioimageio")
    return path, result


def reference(model_path, x: np.ndarray) -> np.ndarray:
    """selfdenoise's own denoising of ``x`` (N, C, H, W), clipped as the package's output is."""
    method, model, _ = load_model(model_path)
    return method.denoise(model, torch.from_numpy(x)).clamp(0, 1).numpy()


def test_package_passes_bioimageio_core_test_offline(package, monkeypatch):
    path, r = package
    assert r["path"] == str(path.with_suffix(".bioimageio.zip")) and r["format"] == "bioimageio"
    assert r["test"] == "passed" and r["max_abs_diff"] <= 1e-4 and r["weights"][0] == "torchscript"
    offline(monkeypatch)
    summary = bmz_core.test_model(r["path"])
    assert summary.status == "passed", summary.format()
    tested = {d.loc[1] for d in summary.details if d.loc[:1] == ("weights",)}
    assert tested == set(r["weights"])
    descr = load_description(r["path"])
    assert descr.format_version.startswith("0.5.") and str(descr.license) == "BSD-3-Clause"
    assert [str(c.doi) for c in descr.cite] == [export.PAPERS["ne2ne"][1]]
    assert [str(a.id) for a in descr.inputs[0].axes] == ["batch", "channel", "y", "x"]
    assert descr.inputs[0].axes[2].size.min == 16 and descr.inputs[0].axes[2].size.step == 1
    assert descr.inputs[0].data.type == descr.outputs[0].data.type == "float32"
    with zipfile.ZipFile(r["path"]) as z:
        readme = z.read("README.md").decode()
        assert {"rdf.yaml", "weights.pt", "test_input.npy", "test_output.npy", "cover.png"} <= set(z.namelist())
    assert "synthetic gradients" in readme and "gauss:25" in readme and "Neighbor2Neighbor" in readme
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.bioimageio.zip", "m.sdm"]  # no leftovers


def test_package_output_equals_selfdenoise_denoise(package):
    path, r = package
    with zipfile.ZipFile(r["path"]) as z:
        x, y = (np.load(z.open(f"test_{k}.npy")) for k in ("input", "output"))
    assert x.shape == y.shape == (1, 1, 64, 64) and x.dtype == y.dtype == np.float32
    assert np.array_equal(x, export.sample_image(1)) and 0 <= x.min() and x.max() <= 1
    ref = reference(path, x)
    assert abs(ref - x).max() > 1e-2 and abs(y - ref).max() <= 1e-4
    odd = np.random.default_rng(1).random((1, 1, 37, 50), dtype=np.float32)  # not the test size; not a multiple
    descr = load_description(r["path"])
    for fmt in r["weights"]:  # through bioimageio.core's own pipeline, per weights format
        for inp, expected in ((x, ref), (odd, reference(path, odd))):
            pipeline = bmz_core.create_prediction_pipeline(descr, weight_format=fmt)  # predict unloads it
            out = bmz_core.predict(model=pipeline, inputs=inp).members["denoised"].data.values
            assert out.shape == inp.shape and abs(out - expected).max() <= 1e-4, fmt


def test_cli_export_rgb(tmp_path):
    path = saved(tmp_path / "rgb.sdm", channels=3)
    result = CliRunner().invoke(main, ["export", str(path), "--format", "bioimageio", "-o", str(tmp_path / "x.zip")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{tmp_path / 'x.zip'}  (bioimageio")
    descr = load_description(tmp_path / "x.zip")
    assert descr.validation_summary.status == "valid-format"
    assert list(descr.inputs[0].axes[1].channel_names) == ["red", "green", "blue"]
    with zipfile.ZipFile(tmp_path / "x.zip") as z:
        assert np.load(z.open("test_input.npy")).shape == (1, 3, 64, 64)


def test_refused_models_and_missing_extra(tmp_path, monkeypatch):
    s2s = registry.get_method("self2self")
    save_model(tmp_path / "s2s.sdm", s2s.build_model(1), method="self2self", channels=1, config=s2s.config())
    with pytest.raises(InputError, match="cannot be exported"):
        export.export_model(tmp_path / "s2s.sdm", tmp_path / "a.zip", "bioimageio")
    (tmp_path / "junk.sdm").write_bytes(b"definitely not a model")
    with pytest.raises(InputError, match="junk.sdm.*not a selfdenoise model file"):
        export.export_model(tmp_path / "junk.sdm", tmp_path / "b.zip", "bioimageio")
    result = CliRunner().invoke(main, ["export", str(tmp_path / "junk.sdm"), "--format", "bioimageio"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1 and "junk.sdm" in result.output
    monkeypatch.setitem(sys.modules, "bioimageio.core", None)  # as if the extra were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'selfdenoise\[bioimageio\]'"):
        export.export_model(tmp_path / "s2s.sdm", tmp_path / "c.zip", "bioimageio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.sdm", "s2s.sdm"]


def test_failed_bioimageio_test_leaves_no_file(tmp_path, monkeypatch):
    path = saved(tmp_path / "m.sdm")
    v0_5, save, _ = export._bioimageio()

    class Failed:
        status, details = "failed", []

    monkeypatch.setattr(export, "_bioimageio", lambda: (v0_5, save, lambda source: Failed()))
    with pytest.raises(InputError, match="bioimageio.core's test of the package failed"):
        export.export_model(path, tmp_path / "m.zip", "bioimageio")
    assert [p.name for p in tmp_path.iterdir()] == ["m.sdm"]


def test_every_exportable_method_has_its_paper():
    exportable = [n for n in registry.LEARNED if registry.method_class(n).exportable]
    assert exportable and [n for n in exportable if n not in export.PAPERS] == []


def test_a_model_of_volumes_exports_zyx(tmp_path, monkeypatch):
    """An ne2ne-3d model: its package declares z, y, x (z from 1 plane), passes bioimageio.core's test
    offline, and its weights reproduce selfdenoise's one pass on an odd volume the package never saw."""
    config = {"net": "unet3d", "widths": [4, 8, 8]}
    path = saved(tmp_path / "vol.sdm", method="ne2ne-3d", config=config)
    offline(monkeypatch)
    r = export.export_model(path, None, "bioimageio")
    assert r["test"] == "passed" and r["max_abs_diff"] <= 1e-4
    assert all(len(s) == 5 for s in r["checked_sizes"])
    descr = load_description(r["path"])
    assert [str(a.id) for a in descr.inputs[0].axes] == ["batch", "channel", "z", "y", "x"]
    assert descr.inputs[0].axes[2].size.min == 1 and "3d" in descr.tags
    with zipfile.ZipFile(r["path"]) as z:
        x = np.load(z.open("test_input.npy"))
        assert "z, y, x" in z.read("README.md").decode()
    assert x.shape == (1, 1, export.VOLUME_SAMPLE_DEPTH, 64, 64)
    odd = np.random.default_rng(2).random((1, 1, 5, 21, 27), dtype=np.float32)
    expected = reference(path, odd)
    assert abs(expected - odd).max() > 1e-2
    for fmt in r["weights"]:
        pipeline = bmz_core.create_prediction_pipeline(descr, weight_format=fmt)
        out = bmz_core.predict(model=pipeline, inputs=odd).members["denoised"].data.values
        assert out.shape == odd.shape and abs(out - expected).max() <= 1e-4, fmt
