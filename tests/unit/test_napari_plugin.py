"""The napari plugin, headless (Qt's offscreen platform): its manifest, the reader/writer round trip of a
16-bit stack, and the Denoise widget running in a worker thread into a new layer.

Showing an image layer in a ``napari.Viewer`` needs OpenGL, which the offscreen platform lacks; the layer
work runs on napari's ``ViewerModel`` (the viewer without its canvas), and the real viewer (no layers) checks
that the widget docks and that opening a model file opens it."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
napari = pytest.importorskip("napari")
pytest.importorskip("magicgui")


def _qt_problem() -> str | None:
    """Why Qt cannot start here (a missing system library, no platform plugin), or None when it can."""
    try:
        from qtpy.QtWidgets import QApplication
    except Exception as e:  # ImportError for a missing libGL/libEGL, or no Qt binding at all
        return f"{type(e).__name__}: {e}"
    if QApplication.instance() is not None:
        return None
    # A platform plugin that cannot load aborts the process: try it in a child first.
    code = "from qtpy.QtWidgets import QApplication; QApplication([])"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    return None if run.returncode == 0 else (lines[0] if lines else f"exit code {run.returncode}")


_problem = _qt_problem()
if _problem:
    pytest.skip(f"Qt cannot start headless ({_problem}); the system packages it needs are listed in README.md, "
                "section napari", allow_module_level=True)

import tifffile  # noqa: E402
from napari.components import ViewerModel  # noqa: E402
from napari.utils.notifications import NotificationSeverity, notification_manager  # noqa: E402
from npe2 import PluginManager, PluginManifest  # noqa: E402

from selfdenoise import api  # noqa: E402
from selfdenoise.methods import registry  # noqa: E402
from selfdenoise.modelfile import save_model  # noqa: E402
from selfdenoise.napari import _reader, _writer  # noqa: E402
from selfdenoise.napari._widget import DenoiseWidget  # noqa: E402


def psnr(a, b) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


@pytest.fixture(scope="module", autouse=True)
def plugins():
    """The installed plugins (this one among them) discovered, as a viewer does on start."""
    PluginManager.instance().discover(include_npe1=False)


@pytest.fixture
def clean_noisy():
    y, x = np.mgrid[0:48, 0:52].astype(np.float32)
    clean = (0.5 + 0.3 * np.sin(x / 6) * np.cos(y / 7)).astype(np.float32)
    return clean, (clean + np.random.default_rng(0).normal(0, 0.1, clean.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def app():
    from qtpy.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


@pytest.fixture
def widget(app, clean_noisy):
    viewer = ViewerModel()
    viewer.add_image(clean_noisy[1], name="noisy")
    w = DenoiseWidget(viewer)
    yield viewer, w
    w.native.deleteLater()
    app.processEvents()


def run_widget(w, app, timeout: float = 60.0):
    w.run()
    assert w.busy and not w.run_button.enabled  # the work is in a worker thread: the UI is free meanwhile
    end = time.monotonic() + timeout
    while w.busy and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    assert not w.busy, f"still denoising after {timeout} s"


def errors_since(n: int) -> list[str]:
    return [str(r.message) for r in notification_manager.records[n:] if r.severity == NotificationSeverity.ERROR]


def test_manifest_validates_and_lists_reader_writer_widget():
    mf = PluginManifest.from_distribution("selfdenoise")
    mf.validate_imports()
    (reader,) = mf.contributions.readers
    assert {"*.tif", "*.tiff", "*.npy", "*.safetensors"} <= set(reader.filename_patterns)
    (writer,) = mf.contributions.writers
    assert [str(t) for t in writer.layer_types] == ["image"] and ".tif" in writer.filename_extensions
    assert [w.display_name for w in mf.contributions.widgets] == ["Denoise"]


def test_reader_and_writer_round_trip_a_16bit_stack(tmp_path):
    stack = np.random.default_rng(1).integers(0, 65536, (5, 40, 36), dtype=np.uint16)
    src = tmp_path / "stack.tif"
    tifffile.imwrite(src, stack, imagej=True, resolution=(1 / 0.25, 1 / 0.25), metadata={"axes": "ZYX", "spacing": 2.0})
    assert _reader.get_reader(str(src)) is _reader.read_layers and _reader.get_reader("x.png") is None
    (layer,) = ViewerModel().open(src, plugin="selfdenoise")
    assert layer.data.shape == (5, 40, 36) and layer.data.dtype == np.uint16 and not layer.rgb
    np.testing.assert_array_equal(layer.data, stack)
    assert tuple(layer.axis_labels) == ("Z", "Y", "X") and np.allclose(layer.scale, [2.0, 0.25, 0.25])
    out = tmp_path / "out.tif"
    assert napari.save_layers(str(out), [layer], plugin="selfdenoise") == [str(out)]
    back = tifffile.imread(out)
    assert back.dtype == np.uint16 and back.shape == stack.shape
    np.testing.assert_array_equal(back, stack)
    tifffile.imwrite(tmp_path / "plain.tif", stack)  # no metadata: a stack of gray slices, unscaled
    ((data, meta, _),) = _reader.read_layers(str(tmp_path / "plain.tif"))
    assert data.dtype == np.uint16 and not meta["rgb"] and "scale" not in meta
    np.testing.assert_array_equal(data, stack)
    plain = np.random.default_rng(2).random((3, 20, 24)).astype(np.float32) * 7 - 2  # no metadata, any range
    assert _writer.write_image(str(tmp_path / "f.npy"), plain, {"rgb": False})
    np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), plain)
    ((data, meta, kind),) = _reader.read_layers(str(tmp_path / "f.npy"))
    assert kind == "image" and not meta["rgb"] and data.dtype == np.float32
    np.testing.assert_allclose(data, plain, atol=1e-6)


@pytest.mark.parametrize("method, budget", [("nlm", 0.0), ("zero-shot", 0.3)])
def test_widget_denoises_into_a_new_layer(widget, clean_noisy, app, method, budget):
    viewer, w = widget
    assert method in w.method.choices and "n2v2" in w.method.choices and "ne2ne" not in w.method.choices
    w.image.value, w.method.value, w.budget.value = viewer.layers["noisy"], method, budget
    assert w.budget.value == budget and w.budget.enabled == (method != "nlm")
    run_widget(w, app)
    out = viewer.layers[f"noisy denoised ({method})"]
    clean, noisy = clean_noisy
    assert out.data.shape == noisy.shape and len(viewer.layers) == 2
    assert psnr(out.data, clean) > psnr(noisy, clean) + 3, (psnr(out.data, clean), psnr(noisy, clean))


def test_a_model_file_opens_the_widget_and_denoises(widget, app, tmp_path):
    path = tmp_path / "tiny.safetensors"
    method = registry.get_method("n2v2")
    save_model(path, method.build_model(1), method="n2v2", channels=1, config=method.config())
    viewer = napari.Viewer(show=False)  # a real window (it shows no image layer: that needs OpenGL)
    try:
        assert viewer.open(path, plugin="selfdenoise") == []  # no layer: the widget docks with the model chosen
        docked = viewer.window.dock_widgets["Denoise (selfdenoise)"]
        assert isinstance(docked, DenoiseWidget) and docked.method.value == "model file"
        assert docked.model.value == path
    finally:
        viewer.close()
    model_viewer, w = widget
    w.use_model(path)
    run_widget(w, app)
    assert model_viewer.layers["noisy denoised (tiny)"].data.shape == (48, 52)


def test_a_bad_model_file_is_a_notification_and_adds_no_layer(widget, app, tmp_path):
    viewer, w = widget
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    seen = len(notification_manager.records)
    w.use_model(bad)
    run_widget(w, app)
    assert len(viewer.layers) == 1
    assert any("bad.safetensors" in m and "not a selfdenoise model file" in m for m in errors_since(seen))
    viewer.layers.clear()
    assert w.image.value is None
    w.run()  # no layer to denoise: a notification, no worker
    assert not w.busy and any("choose an Image layer" in m for m in errors_since(seen))


def test_a_model_of_volumes_denoises_a_zyx_layer_whole(widget, app, tmp_path, perturbed):
    """An ne2ne-3d model denoises the layer's last three axes as one volume (the network sees Z), equal to
    ``api.denoise`` on that volume; a 2-D layer is refused with a notification."""
    path = perturbed(tmp_path / "vol.safetensors", "ne2ne-3d", widths=[4, 8, 8])[0]
    viewer, w = widget
    seen = len(notification_manager.records)
    w.use_model(path)
    run_widget(w, app)  # the 2-D "noisy" layer
    assert len(viewer.layers) == 1 and any("model of volumes" in m for m in errors_since(seen))
    volume = np.random.default_rng(3).random((5, 40, 44), dtype=np.float32)
    viewer.add_image(volume, name="stack")
    w.image.value = viewer.layers["stack"]
    run_widget(w, app)
    out = viewer.layers["stack denoised (vol)"].data
    assert out.shape == volume.shape
    np.testing.assert_allclose(out, api.denoise(volume, model=path), atol=1e-6)
