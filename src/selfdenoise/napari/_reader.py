"""Open TIFF/NPY images (``core.io.read_image``: its checks, axes from OME/ImageJ metadata, the file's
dtype kept) and selfdenoise model files (no layer: the Denoise widget opens with the model chosen)."""
from __future__ import annotations

from pathlib import Path

import napari
import tifffile
from napari.utils.notifications import show_info

from ..core import io
from ..modelfile import read_metadata

IMAGE_SUFFIXES = (".tif", ".tiff", ".npy")
MODEL_SUFFIX = ".safetensors"


def get_reader(path):
    """The npe2 reader hook: a reading function for one TIFF/NPY/model file, else None."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    suffix = Path(str(path)).suffix.lower()
    if suffix == MODEL_SUFFIX:
        return read_model
    return read_layers if suffix in IMAGE_SUFFIXES else None


def read_layers(path) -> list[tuple]:
    """One image layer in the file's own dtype and values (16-bit stays 16-bit), its axes named when
    the file's metadata name them; a channel axis other than RGB becomes one layer per channel."""
    path = Path(path[0] if isinstance(path, list) else path)
    arr, info = io.read_image(path)
    data = io.from_unit_range(arr, info)
    meta = {"name": path.stem, "rgb": False}
    if info.axes:
        data, axes = io.restore_axes(data, info.axes, info.layout), info.axes
        if "C" in axes:
            c = axes.index("C")
            if data.shape[c] == 1:
                data, axes = data.squeeze(c), axes.replace("C", "")
            elif c == len(axes) - 1 and data.shape[c] == 3:
                meta["rgb"] = True
            else:
                meta["channel_axis"] = c
        spatial = axes.replace("C", "")
        meta["axis_labels"] = tuple(spatial)
        scale = _tiff_scale(path, spatial)
        if scale is not None:
            meta["scale"] = scale
    elif not info.gray_2d:  # (..., H, W, C), C = 1 or 3
        meta["rgb"] = data.shape[-1] == 3
        data = data if meta["rgb"] else data[..., 0]
    return [(data, meta, "image")]


def read_model(path) -> list[tuple]:
    """A model file makes no layer: its summary is shown and the Denoise widget opens with it."""
    path = Path(path[0] if isinstance(path, list) else path)
    meta = read_metadata(path)
    show_info(f"{path.name}: a '{meta['method']}' model, {meta['channels']} channel(s), "
              f"{meta['parameters']:,} parameters")
    viewer = napari.current_viewer()
    if viewer is not None and hasattr(viewer.window, "add_plugin_dock_widget"):
        _, widget = viewer.window.add_plugin_dock_widget("selfdenoise", "Denoise")
        widget.use_model(path)
    return [(None,)]  # npe2's "read, no layer" sentinel


def _tiff_scale(path: Path, axes: str) -> tuple[float, ...] | None:
    """Pixel sizes of the Z, Y and X axes from OME or ImageJ metadata (1 for other axes), when given."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    sizes = {}
    try:
        with tifffile.TiffFile(path) as tf:
            if tf.is_ome:
                pixels = tifffile.xml2dict(tf.ome_metadata)["OME"]["Image"]
                pixels = (pixels[0] if isinstance(pixels, list) else pixels)["Pixels"]
                sizes = {a: float(pixels[f"PhysicalSize{a}"]) for a in "ZYX" if f"PhysicalSize{a}" in pixels}
            elif tf.is_imagej:
                tags = tf.pages[0].tags
                for a, tag in (("X", "XResolution"), ("Y", "YResolution")):
                    num, den = tags[tag].value if tag in tags else (1, 1)
                    if num and (num, den) != (1, 1):
                        sizes[a] = den / num
                if "spacing" in (tf.imagej_metadata or {}):
                    sizes["Z"] = float(tf.imagej_metadata["spacing"])
    except Exception:  # scale is a nicety: a file read_image accepted still opens without it
        return None
    return tuple(sizes.get(a, 1.0) for a in axes) if sizes else None
