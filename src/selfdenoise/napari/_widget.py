"""The Denoise dock widget: an Image layer, a method (or a trained model file) and a budget in seconds.
The work runs in a worker thread (napari's ``create_worker``) with a progress bar; the result is a new
layer, and a bad input (an ``InputError``, a missing extra) is a notification."""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, Label, PushButton
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info

from .. import api
from ..core.errors import SelfdenoiseError
from ..methods import registry

#: the method entry that denoises with a model file written by ``selfdenoise train``
MODEL = "model file"


@dataclass
class Failed:
    """What a worker returns when a bad input stopped it (a returned exception would be raised again)."""

    message: str


def method_choices() -> list[str]:
    """The methods that denoise one image on their own (single-image, then classical), then ``MODEL``."""
    return registry.names("single-image") + registry.names("classical") + [MODEL]


def value_range(data: np.ndarray) -> tuple[float, float] | None:
    """``data_range`` for ``api.denoise``: None for floats it takes as they are (about [0, 1])."""
    if data.dtype in (np.uint8, np.uint16):
        return 0.0, float(np.iinfo(data.dtype).max)
    lo, hi = float(data.min()), float(data.max())
    if np.issubdtype(data.dtype, np.floating) and api.FLOAT_SLACK[0] <= lo and hi <= api.FLOAT_SLACK[1]:
        return None
    return lo, hi if hi > lo else lo + 1.0


def denoise_layer(data: np.ndarray, rgb: bool, method: str, model: Path | None, budget: float):
    """Denoise each 2-D plane (with its RGB axis) of a layer's data, or with a model of volumes each 3-D
    volume (its last three axes other than RGB taken as Z, Y, X), yielding once per 2-D plane. Returns the result
    in the data's dtype and units, or ``Failed`` with the ``SelfdenoiseError`` that stopped it."""
    try:
        options = {"data_range": value_range(data)}
        if model is not None:
            options["model"] = api.load_model(model)
        elif budget > 0 and "budget" in registry.method_options(method):
            options["budget"] = budget
        spatial = 3 if model is not None and options["model"].volumetric else 2
        if data.ndim < spatial + rgb:
            return Failed(f"{Path(model).name} is a model of volumes: choose a layer with a Z axis (Z, Y, X)")
        planes = data.reshape(-1, *data.shape[data.ndim - spatial - rgb:])
        out = np.empty(planes.shape, np.float32)
        for i, plane in enumerate(planes):
            out[i] = api.denoise(plane, method, **options)
            for _ in range(len(plane) if spatial == 3 else 1):  # progress counts 2-D planes either way
                yield i + 1
    except SelfdenoiseError as e:
        return Failed(str(e))
    out = out.reshape(data.shape)
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        return np.clip(np.round(out), info.min, info.max).astype(data.dtype)
    return out


class DenoiseWidget(Container):
    """Choose an Image layer and a method or model file; ``Denoise`` adds "<layer> denoised (<method>)"."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer, self.worker, self.busy = viewer, None, False
        self.image = ComboBox(label="image", choices=self._image_layers)
        self.method = ComboBox(label="method", choices=method_choices(), value="zero-shot")
        self.model = FileEdit(label="model file", mode="r", filter="*.safetensors", visible=False)
        self.budget = FloatSpinBox(label="budget (s)", value=30.0, min=0.0, max=86400.0, step=5.0,
                                   tooltip="seconds per 2-D plane for the learned methods; 0: the method's default")
        self.run_button = PushButton(text="Denoise")
        self.status = Label(value="")
        self.extend([self.image, self.method, self.model, self.budget, self.run_button, self.status])
        self.method.changed.connect(self._method_changed)
        self.run_button.changed.connect(self.run)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed, viewer.layers.events.reordered):
            event.connect(self.image.reset_choices)

    def _image_layers(self, _widget=None) -> list[tuple[str, napari.layers.Image]]:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, napari.layers.Image)]

    def _method_changed(self, value: str) -> None:
        self.model.visible = value == MODEL
        self.budget.enabled = value != MODEL and "budget" in registry.method_options(value)

    def use_model(self, path: str | Path) -> None:
        """Denoise with this model file from now on."""
        self.method.value, self.model.value = MODEL, Path(path)

    def run(self) -> None:
        """Start denoising the chosen layer in a worker thread (one run at a time)."""
        layer, method = self.image.value, self.method.value
        model = Path(self.model.value) if method == MODEL and str(self.model.value) not in ("", ".") else None
        if self.busy:
            return show_info("selfdenoise: a layer is being denoised; wait for it to finish")
        if layer is None:
            return show_error("selfdenoise: choose an Image layer to denoise")
        if method == MODEL and model is None:
            return show_error("selfdenoise: choose a model file (*.safetensors, written by `selfdenoise train`)")
        data = np.asarray(layer.data[0] if layer.multiscale else layer.data)
        label = model.stem if model else method
        n = int(np.prod(data.shape[:data.ndim - (3 if layer.rgb else 2)]))
        self.busy, self.run_button.enabled = True, False
        self.status.value = f"denoising {layer.name} ({label})..."
        done = {"returned": partial(self._returned, layer, label, time.perf_counter()),
                "errored": self._errored, "finished": self._finished}
        self.worker = create_worker(denoise_layer, data, layer.rgb, method, model, float(self.budget.value),
                                    _progress={"total": n, "desc": f"selfdenoise: {layer.name} ({label})"},
                                    _connect=done)

    def _returned(self, layer, label: str, t0: float, result) -> None:
        if isinstance(result, Failed):
            self.status.value = f"failed: {result.message}"
            return show_error(f"selfdenoise: {result.message}")
        name = f"{layer.name} denoised ({label})"
        extra = {} if layer.rgb else {"colormap": layer.colormap}
        self.viewer.add_image(result, name=name, rgb=layer.rgb, scale=layer.scale, translate=layer.translate,
                              contrast_limits=layer.contrast_limits, metadata={"selfdenoise": label}, **extra)
        self.status.value = f"{name}: {time.perf_counter() - t0:.1f} s"
        show_info(f"selfdenoise: {self.status.value}")

    def _errored(self, error: Exception) -> None:  # napari shows the error itself (with its traceback)
        self.status.value = f"failed: {type(error).__name__}: {error}"

    def _finished(self) -> None:
        self.busy, self.run_button.enabled, self.worker = False, True, None
