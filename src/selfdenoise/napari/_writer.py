"""Save one image layer through ``core.io.write_image``: its dtype and values kept (16-bit stays 16-bit),
TIFF/NPY for stacks and volumes, PNG for 2-D images."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import io
from ..core.errors import InputError

#: leading axes of a layer beyond Y, X (and RGB), outermost first, as ``io.apply_axes`` names them
LEADING = "STZ"


def write_image(path: str, data, meta: dict) -> list[str]:
    """The npe2 single-layer writer hook: returns the written path."""
    data = np.asarray(data[0] if meta.get("multiscale") else data)
    rgb = bool(meta.get("rgb"))
    unit, info = to_unit_range(data)
    spatial = data.ndim - (3 if rgb else 2)
    if spatial > len(LEADING):
        raise InputError(f"{path}: a {data.ndim}-D layer has more axes than {LEADING}YX{'C' if rgb else ''}")
    if spatial:  # a stack or volume: named axes, written as they are (TIFF/NPY)
        info.axes = LEADING[-spatial:] + "YX" + ("C" if rgb else "")
        unit, info.layout = io.apply_axes(unit, info.axes)
        info.stack, info.channels = unit.ndim == 4, unit.shape[-1]
    else:
        info.gray_2d, info.channels = not rgb, data.shape[-1] if rgb else 1
    io.write_image(path, unit, info)
    return [str(Path(path))]


def to_unit_range(data: np.ndarray) -> tuple[np.ndarray, io.ImageInfo]:
    """``data`` mapped to [0, 1] (float64, so that the way back is exact) and the ``ImageInfo`` of that map."""
    info = io.ImageInfo(dtype=str(data.dtype))
    if data.dtype == np.bool_:
        info.dtype, data = "uint8", data.astype(np.uint8) * 255
    if data.dtype in (np.uint8, np.uint16):
        return data / float(np.iinfo(data.dtype).max), info
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise InputError(f"cannot save {data.dtype} data as an image")
    lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 1.0)
    if not (np.issubdtype(data.dtype, np.floating) and lo >= 0.0 and hi <= 1.0):  # [0, 1] floats stay as they are
        info.offset, info.scale = lo, (hi - lo) or 1.0
    return (data.astype(np.float64) - info.offset) / info.scale, info
