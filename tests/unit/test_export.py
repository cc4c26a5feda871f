import json
import sys

import pytest
import torch

from selfdenoise import export
from selfdenoise.core.errors import InputError, MissingDependencyError
from selfdenoise.export import export_model
from selfdenoise.methods import registry
from selfdenoise.modelfile import save_model

CONFIG = {"use_prior": False}
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
SIZES = [(1, 37, 45), (2, 64, 80), (1, 9, 13), (3, 100, 7), (1, 5, 70)]  # none is the example size 40x56


def saved(tmp_path, channels=3):
    model = registry.get_method("zero-shot", **CONFIG).build_model(channels)
    with torch.no_grad():
        for p in model.parameters():  # the output conv starts at zero (an identity net): make it not so
            p.add_(torch.randn_like(p) * 0.05)
    path = save_model(tmp_path / "m.sdm", model, method="zero-shot", channels=channels, config=CONFIG,
                      extra={"noise": "gauss:25"})
    return path, model.eval()


def reference(model, n, c, h, w):
    x = torch.rand(n, c, h, w)
    with torch.no_grad():
        y = model(x)
    assert (y - x).abs().max() > 1e-2  # not an identity: a broken export would show
    return x, y


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".sdm")


@pytest.mark.parametrize("channels", [3, 1])
def test_onnx_export_dynamic_sizes_and_metadata(tmp_path, channels):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path, model = saved(tmp_path, channels)
    res = export_model(path)
    assert res["path"] == str(tmp_path / "m.onnx") and res["format"] == "onnx"
    assert res["max_abs_diff"] <= 1e-4 and len(res["checked_sizes"]) == 2 and res["seconds"] > 0
    assert all(h % 2 and w % 2 for _, _, h, w in res["checked_sizes"])
    sess = ort.InferenceSession(res["path"], providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["noisy"] and [o.name for o in sess.get_outputs()] == ["denoised"]
    for n, h, w in SIZES:
        x, y = reference(model, n, channels, h, w)
        out = sess.run(None, {"noisy": x.numpy()})[0]
        assert out.shape == (n, channels, h, w)
        assert abs(out - y.numpy()).max() <= 1e-4, (n, h, w)
    meta = {p.key: p.value for p in onnx.load(res["path"]).metadata_props}
    assert meta["selfdenoise.method"] == "zero-shot" and meta["selfdenoise.channels"] == str(channels)
    assert json.loads(meta["selfdenoise.config"]) == CONFIG
    assert json.loads(meta["selfdenoise.extra"]) == {"noise": "gauss:25"}
    assert leftovers(tmp_path) == ["m.onnx"]


def test_torchscript_export(tmp_path):
    path, model = saved(tmp_path)
    res = export_model(path, tmp_path / "out.pt", fmt="torchscript")
    assert res["format"] == "torchscript" and res["max_abs_diff"] <= 1e-4
    files = {"selfdenoise.json": ""}
    loaded = torch.jit.load(res["path"], _extra_files=files)
    assert json.loads(files["selfdenoise.json"])["method"] == "zero-shot"
    for n, h, w in SIZES:
        x, y = reference(model, n, 3, h, w)
        with torch.no_grad():
            assert (loaded(x) - y).abs().max() <= 1e-4, (n, h, w)
    assert leftovers(tmp_path) == ["out.pt"]


def test_bad_requests(tmp_path, monkeypatch):
    path, _ = saved(tmp_path)
    with pytest.raises(InputError, match="onnx, torchscript"):
        export_model(path, fmt="tflite")
    junk = tmp_path / "junk.sdm"
    junk.write_bytes(b"definitely not a model")
    with pytest.raises(InputError, match="not a selfdenoise model file"):
        export_model(junk, fmt="torchscript")
    pt = tmp_path / "m.pt"
    pt.write_bytes(path.read_bytes())
    with pytest.raises(InputError, match="overwrite the model file"):
        export_model(pt, fmt="torchscript")
    pt.unlink()
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'selfdenoise\[onnx\]'"):
        export_model(path)
    assert leftovers(tmp_path) == []


def test_failed_export_leaves_no_file(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    path, _ = saved(tmp_path)

    def broken(*args, **kwargs):
        with open(args[2], "wb") as f:
            f.write(b"half an onnx file")
        raise RuntimeError("exporter blew up")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(InputError, match="onnx export failed .*exporter blew up"):
        export_model(path)
    assert leftovers(tmp_path) == []
    monkeypatch.setattr(export, "_exportable", lambda model, channels, volumes=False: model)  # trace the bare network:
    with pytest.raises(InputError, match="exported model"):  # its padding is frozen; the check must see it
        export_model(path, fmt="torchscript")
    assert leftovers(tmp_path) == []


def test_a_model_of_volumes_exports_with_dynamic_depth_from_the_cli(tmp_path, perturbed):
    """``selfdenoise export vol.sdm --format onnx``: (N, C, D, H, W) with every size dynamic, equal to the
    network on volumes of other depths and odd sides, one plane included."""
    from click.testing import CliRunner

    from selfdenoise.cli import main

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path, model = perturbed(tmp_path / "vol.sdm", "ne2ne-3d", widths=[4, 8, 8])
    result = CliRunner().invoke(main, ["export", str(path), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    sess = ort.InferenceSession(str(tmp_path / "vol.onnx"), providers=["CPUExecutionProvider"])
    model.eval()
    for n, d, h, w in [(1, 7, 29, 35), (2, 1, 16, 9), (1, 12, 40, 56)]:
        x = torch.rand(n, 1, d, h, w)
        with torch.no_grad():
            y = model(x)
        assert (y - x).abs().max() > 1e-2
        out = sess.run(None, {"noisy": x.numpy()})[0]
        assert out.shape == x.shape and abs(out - y.numpy()).max() <= 1e-4, (n, d, h, w)
