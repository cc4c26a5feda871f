"""Reading and writing images without losing what the user gave us.

``read_image`` returns float32 arrays in [0, 1], shaped (H, W, C) (C = 1 or 3), or (S, H, W, C) for a
multi-page TIFF / 3-D NPY stack, together with an ``ImageInfo`` that ``write_image`` uses to restore the
input's dtype, channel count and value range (16-bit stays 16-bit, a float NPY keeps its range).
Every problem becomes an ``InputError`` whose one-line message names the file. Writes are atomic.
"""
from __future__ import annotations

import io as stdio
import os
import shutil
import socket
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")
#: Smallest height/width accepted: the pixel-shuffle based methods need 2x2 cells, the networks
#: at least a few pixels to convolve.
MIN_SIDE = 4


@dataclass
class ImageInfo:
    """What ``write_image`` needs to give back the input's form."""

    path: str = ""
    dtype: str = "uint8"  # uint8 | uint16 | float32 | float64
    channels: int = 3  # channels of the array handed to the user (1 or 3)
    gray_2d: bool = False  # the source had no channel axis
    stack: bool = False  # (S, H, W, C)
    offset: float = 0.0  # float data: original = array * scale + offset
    scale: float = 1.0
    axes: str = ""  # the input's axes (``--axes`` or OME/ImageJ metadata), restored on the way out
    layout: tuple = ()  # how ``apply_axes`` arranged them: (order, shape before flattening, channels_apart)
    ome: bool = False  # the axes came from the TIFF's OME/ImageJ metadata: a TIFF output carries them as OME


def _fail(path, what: str) -> InputError:
    return InputError(f"{path}: {what}")


def is_zarr(path: str | os.PathLike) -> bool:
    """A Zarr store (a folder named ``*.zarr``, or one holding Zarr metadata): read as one image."""
    p = Path(path)
    return p.suffix.lower() == ".zarr" or any((p / m).is_file() for m in ("zarr.json", ".zarray", ".zgroup"))


def list_images(path: str | os.PathLike) -> list[Path]:
    """A file (or Zarr store), or the image files and Zarr stores of a folder (sorted, not recursive)."""
    p = Path(path)
    if p.is_dir() and not is_zarr(p):
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
                       or f.suffix.lower() == ".zarr" and f.is_dir())
        if not files:
            raise _fail(p, f"folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return files
    if not p.exists():
        raise _fail(p, "no such file or folder")
    return [p]


def _to_unit_range(arr: np.ndarray, path) -> tuple[np.ndarray, ImageInfo]:
    info = ImageInfo(path=str(path), dtype=str(arr.dtype))
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
        info.dtype = "uint8"
    if arr.dtype in (np.uint8, np.uint16):  # in place: one float32 copy of a 24-MP photo, not two
        out = arr.astype(np.float32)
        out /= 255.0 if arr.dtype == np.uint8 else 65535.0
    elif np.issubdtype(arr.dtype, np.integer):
        lo, hi = float(arr.min()), float(arr.max())
        info.dtype, info.offset, info.scale = str(arr.dtype), lo, max(hi - lo, 1.0)
        out = ((arr.astype(np.float64) - lo) / info.scale).astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            n = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise _fail(path, f"contains {n} NaN/Inf values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0.0 and hi <= 1.0:
            out = arr.astype(np.float32)
        else:  # keep the user's range: map to [0, 1] and back on the way out
            info.offset, info.scale = lo, (hi - lo) if hi > lo else 1.0
            out = ((arr.astype(np.float64) - lo) / info.scale).astype(np.float32)
    else:
        raise _fail(path, f"unsupported data type {arr.dtype}")
    return out, info


def _check_size(arr: np.ndarray, path) -> None:
    h, w = arr.shape[-3], arr.shape[-2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise _fail(path, f"image is {h}x{w}; at least {MIN_SIDE}x{MIN_SIDE} pixels are needed")


def _normalise_channels(arr: np.ndarray, path, stack: bool) -> tuple[np.ndarray, bool]:
    """Give (…, H, W, C) with C in {1, 3}; return whether the input was 2-D gray."""
    gray_2d = arr.ndim == (3 if stack else 2)
    if gray_2d:
        arr = arr[..., None]
    c = arr.shape[-1]
    if c == 4:
        warnings.warn(f"{path}: alpha channel dropped (RGBA -> RGB)", stacklevel=3)
        arr = arr[..., :3]
    elif c == 2:
        warnings.warn(f"{path}: alpha channel dropped (gray+alpha -> gray)", stacklevel=3)
        arr = arr[..., :1]
    elif c not in (1, 3):
        raise _fail(path, f"unsupported channel count {c} (expected 1, 3 or 4; --axes names other layouts, "
                          "e.g. ZCYX)")
    return arr, gray_2d


#: images with more pixels than this (per slice) are refused before they are decoded (``--max-pixels``)
MAX_PIXELS = 250_000_000


def _check_pixels(path, height: int, width: int, max_pixels: int) -> None:
    if height * width > max_pixels:
        raise _fail(path, f"{width}x{height} is {height * width / 1e6:.0f} megapixels, above the limit of "
                          f"{max_pixels / 1e6:.0f} (--max-pixels)")


def _read_pil(path: Path, max_pixels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # PIL's decompression-bomb guard: ``_check_pixels`` is ours, with a clear line
    try:
        with Image.open(path) as im:
            _check_pixels(path, im.size[1], im.size[0], max_pixels)
            im.load()
            mode = im.mode
            if mode == "P" or mode == "PA":
                warnings.warn(f"{path}: palette image converted to RGB", stacklevel=3)
                im = im.convert("RGBA" if "transparency" in im.info or mode == "PA" else "RGB")
            elif mode in ("1", "L", "LA", "RGB", "RGBA"):
                pass
            elif mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(im, dtype=np.uint16)
            elif mode == "I":
                a = np.asarray(im)
                return a.astype(np.uint16) if a.min() >= 0 and a.max() <= 65535 else a
            elif mode == "F":
                return np.asarray(im, dtype=np.float32)
            else:
                warnings.warn(f"{path}: {mode} image converted to RGB", stacklevel=3)
                im = im.convert("RGB")
            return np.asarray(im)
    except UnidentifiedImageError:
        raise _fail(path, "not an image (unrecognised format)") from None
    except PermissionError:
        raise _fail(path, "cannot be read: permission denied") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise _fail(path, f"truncated or corrupt image ({e})") from None


def _read_tiff(path: Path, max_pixels: int) -> tuple[np.ndarray, str | None]:
    """The first series of a TIFF, and its axes when OME or ImageJ metadata name them (else None)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            if not tf.pages:
                raise _fail(path, "TIFF holds no pages")
            _check_pixels(path, tf.pages[0].imagelength, tf.pages[0].imagewidth, max_pixels)
            series = tf.series[0]
            arr = series.asarray()
            axes = series.axes
            named = _metadata_axes(axes) if (tf.is_ome or tf.is_imagej) else None
            if named is None and "S" in axes and axes.index("S") != len(axes) - 1:  # planar RGB: samples last
                arr = np.moveaxis(arr, axes.index("S"), -1)
    except InputError:
        raise
    except PermissionError:
        raise _fail(path, "cannot be read: permission denied") from None
    except Exception as e:  # tifffile raises many types for broken files
        raise _fail(path, f"truncated or corrupt TIFF ({type(e).__name__}: {e})") from None
    return arr, named


def _metadata_axes(axes: str) -> str | None:
    """tifffile's axes of an OME/ImageJ series in our letters (its S, samples, is a channel axis), or None
    when they hold a letter without a meaning here (e.g. Q, unknown) or two channel axes."""
    if "S" in axes:
        if "C" in axes:
            return None
        axes = axes.replace("S", "C")
    return axes if set(axes) <= set(AXES) and "Y" in axes and "X" in axes else None


#: the axes a user (``--axes``, CAREamics' letters) or a file's metadata may name: S samples, T time,
#: Z depth, C channels, Y and X
AXES = "STZCYX"


def check_axes(axes: str, shape: tuple, path="array") -> str:
    """``axes`` upper-cased, or a one-line error when they cannot describe an array of ``shape``."""
    axes = str(axes).upper()
    bad = sorted(set(axes) - set(AXES))
    if bad:
        raise _fail(path, f"axes {axes}: unknown letter {bad[0]} (use {', '.join(AXES)})")
    if len(set(axes)) != len(axes):
        raise _fail(path, f"axes {axes}: a letter appears twice")
    if "Y" not in axes or "X" not in axes:
        raise _fail(path, f"axes {axes}: Y and X are needed")
    if len(axes) != len(shape):
        raise _fail(path, f"axes {axes} do not match the array's {len(shape)} dimensions {tuple(shape)}")
    return axes


def apply_axes(arr: np.ndarray, axes: str) -> tuple[np.ndarray, tuple]:
    """Arrange an array with named ``axes`` as (stack, Y, X, C) or (Y, X, C): S, T and Z (in that order)
    flatten into the stack; 1 or 3 channels stay a gray or colour image, any other number are denoised
    one by one (they join the stack). Returns the array and the layout ``restore_axes`` undoes."""
    order = [a for a in "STZ" if a in axes] + ["Y", "X"] + (["C"] if "C" in axes else [])
    arr = arr.transpose([axes.index(a) for a in order])
    if "C" not in axes:
        arr = arr[..., None]
    apart = arr.shape[-1] not in (1, 3)
    if apart:  # independent channels: each a gray image of the stack
        arr = np.moveaxis(arr, -1, 0)[..., None]
    shaped = arr.shape
    lead = shaped[:-3]
    return (arr.reshape(-1, *shaped[-3:]) if lead else arr), (tuple(order), shaped, apart)


def restore_axes(arr: np.ndarray, axes: str, layout: tuple) -> np.ndarray:
    """Undo ``apply_axes``: the array back in the input's axes order and shape."""
    order, shaped, apart = layout
    arr = arr.reshape(shaped[:-1] + arr.shape[-1:])
    if apart:
        arr = np.moveaxis(arr[..., 0], 0, -1)
    if "C" not in axes:
        arr = arr[..., 0]
    return arr.transpose([list(order).index(a) for a in axes])


def as_volumes(arr: np.ndarray, info: ImageInfo, path="array") -> np.ndarray:
    """``read_image``'s array as ZYX volumes (N, Z, H, W, C): N counts the other leading axes (S, T, channels
    denoised one by one); a stack without named axes is one volume, its pages the planes. A one-line
    ``InputError`` for a 2-D image or axes without Z. ``reshape(arr.shape)`` gives the stack back."""
    if arr.ndim != 4:
        raise _fail(path, "is a 2-D image; a 3-D method needs a volume (a TIFF/NPY stack with a Z axis, e.g. "
                          "--axes ZYX)")
    if info.axes and "Z" not in info.axes:
        raise _fail(path, f"axes {info.axes} have no Z; a 3-D method needs a volume (e.g. --axes ZYX)")
    return frame_runs(arr, info)


def frame_runs(arr: np.ndarray, info: ImageInfo) -> np.ndarray:
    """``read_image``'s stack (S, H, W, C) as runs (N, R, H, W, C) along its innermost stacked axis (Z, else T,
    else S: it runs fastest in the flattened stack); a stack without named axes is one run, its pages in order."""
    run = info.layout[1][-4] if info.axes else arr.shape[0]
    return arr.reshape(-1, run, *arr.shape[1:])


#: a 3-D array whose last axis is this short (and shorter than the others) is taken for channels, not a stack
MAX_CHANNELS_GUESS = 16


def read_image(path: str | os.PathLike, max_pixels: int | None = None,
               axes: str | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Read PNG/JPEG/BMP/TIFF/NPY into float32 [0, 1], (H, W, C) or (S, H, W, C) for stacks. Images above
    ``max_pixels`` per slice (default ``MAX_PIXELS``) are refused before decoding.

    ``axes`` (``"ZYX"``, ``"CYX"``, ``"TZYX"``, ... see ``AXES``) says what each dimension of a TIFF or NPY is;
    without it a TIFF's OME or ImageJ metadata says so when present, and otherwise the layout is read from
    the shape (2-D gray, a short last axis of 1, 3 or 4 channels, else a stack), refusing shapes that could
    be either. With axes, channels other than 1 or 3 are denoised one by one (never dropped as alpha)."""
    max_pixels = MAX_PIXELS if max_pixels is None else int(max_pixels)
    path = Path(path)
    if not path.exists():
        raise _fail(path, "no such file")
    if path.is_dir():
        raise _fail(path, "is a folder, not an image file")
    if path.stat().st_size == 0:
        raise _fail(path, "file is empty (0 bytes)")
    suffix = path.suffix.lower()
    named = None
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        except PermissionError:
            raise _fail(path, "cannot be read: permission denied") from None
        except Exception as e:
            raise _fail(path, f"not a readable NPY array ({e})") from None
        if arr.ndim >= 2:
            sides = arr.shape[-3:-1] if arr.ndim >= 3 and arr.shape[-1] in (1, 2, 3, 4) else arr.shape[-2:]
            _check_pixels(path, sides[0], sides[-1], max_pixels)
        arr = np.array(arr)
    elif suffix in (".tif", ".tiff"):
        arr, named = _read_tiff(path, max_pixels)
    else:
        if axes is not None:
            raise _fail(path, f"--axes is for TIFF and NPY files; a {suffix} image is Y, X and its colours")
        arr = _read_pil(path, max_pixels)
    arr = np.asarray(arr)
    if arr.size == 0:
        raise _fail(path, f"image has no pixels (shape {arr.shape})")
    if axes is not None:
        return _read_with_axes(arr, check_axes(axes, arr.shape, path), path, ome=False)
    if named is not None:
        return _read_with_axes(arr, named, path, ome=True)
    # Decide between (H,W), (H,W,C), (S,H,W), (S,H,W,C).
    if arr.ndim == 2:
        stack = False
    elif arr.ndim == 3:
        stack = arr.shape[-1] not in (1, 2, 3, 4)
        if stack and arr.shape[-1] <= MAX_CHANNELS_GUESS and arr.shape[-1] < min(arr.shape[:2]):
            raise _fail(path, f"shape {arr.shape}: the last axis looks like {arr.shape[-1]} channels (1, 3 or 4 are "
                              "read) rather than an image side; say what the axes are with --axes (e.g. YXC, ZYX)")
    elif arr.ndim == 4:
        stack = True
    else:
        raise _fail(path, f"unsupported array shape {arr.shape} (expected HxW, HxWxC or a stack of them; --axes "
                          "names other layouts, e.g. TZYX)")
    arr, info = _to_unit_range(arr, path)
    arr, info.gray_2d = _normalise_channels(arr, path, stack)
    _check_size(arr, path)
    info.stack, info.channels = stack, arr.shape[-1]
    return np.ascontiguousarray(arr, dtype=np.float32), info


def _read_with_axes(arr: np.ndarray, axes: str, path, ome: bool) -> tuple[np.ndarray, ImageInfo]:
    arr, layout = apply_axes(arr, axes)
    arr, info = _to_unit_range(arr, path)
    _check_size(arr, path)
    info.stack, info.channels, info.axes, info.layout, info.ome = arr.ndim == 4, arr.shape[-1], axes, layout, ome
    return np.ascontiguousarray(arr, dtype=np.float32), info


#: ``from_unit_range`` converts this many values at a time (a 24-MP photo as float64 would be 576 MB)
CONVERT_CHUNK = 1 << 22


def from_unit_range(arr: np.ndarray, info: ImageInfo) -> np.ndarray:
    """Inverse of the read-side scaling: back to the input's dtype, range and channel layout (converted
    in chunks of rows, so that no full-size float64 copy is made)."""
    arr = np.asarray(arr)
    if info.gray_2d and arr.shape[-1] == 1:
        arr = arr[..., 0]
    out = np.empty(arr.shape, dtype=np.dtype(info.dtype))
    rows = arr.reshape(-1, *arr.shape[-2:]) if arr.ndim >= 3 else arr
    target = out.reshape(rows.shape)
    step = max(1, CONVERT_CHUNK // max(1, rows[0].size))
    for i in range(0, len(rows), step):
        target[i:i + step] = _convert_back(rows[i:i + step], info)
    return out


def _convert_back(chunk: np.ndarray, info: ImageInfo) -> np.ndarray:
    out = np.asarray(chunk, dtype=np.float64)
    if info.dtype in ("uint8", "uint16") and info.scale == 1.0 and info.offset == 0.0:
        top = 255.0 if info.dtype == "uint8" else 65535.0
        return np.round(np.clip(out, 0.0, 1.0) * top).astype(info.dtype)
    out = out * info.scale + info.offset
    if np.issubdtype(np.dtype(info.dtype), np.integer):
        ii = np.iinfo(np.dtype(info.dtype))
        return np.clip(np.round(out), ii.min, ii.max).astype(info.dtype)
    return out.astype(info.dtype)


#: temporary files of ``atomic_write`` are named ``.<stem>.<host>-<pid>.<random><suffix>.part``
_HOST = "".join(c for c in socket.gethostname() if c.isalnum())[:16] or "host"


def atomic_write(path: str | os.PathLike, write, previous: str | os.PathLike | None = None) -> None:
    """Call ``write(tmp_path)``, fsync, then rename over ``path``: never a partial file, even when
    interrupted. With ``previous``, the file being replaced is kept there (moved only once the new one is
    complete). Temporary files left by a killed writer of the same path on this machine are removed first.
    Failures become one-line ``InputError``s naming ``path`` (a full disk included)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise _fail(path, f"cannot write: folder {folder} does not exist")
    sweep_stale_parts(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{_HOST}-{os.getpid()}.", suffix=path.suffix + ".part",
                                   dir=folder)
    except OSError as e:
        raise _fail(path, f"cannot write ({e.strerror})") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if previous is not None and path.is_file():
            os.replace(path, previous)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise _fail(path, f"cannot write ({e.strerror or e})") from None
        if type(e).__name__ == "SafetensorError" and "I/O error" in str(e):  # safetensors' wrapper of an OSError
            raise _fail(path, f"cannot write ({str(e).split('I/O error: ', 1)[-1]})") from None
        raise


class CheckedWrites:
    """A file's ``write`` alone. numpy (``np.save``) and tifffile write a real file with ``ndarray.tofile``,
    which loses the error of a full disk and leaves a truncated file; through this object they write with
    Python's ``write``, which raises it."""

    def __init__(self, file):
        self.file = file

    def write(self, data) -> int:
        return self.file.write(data)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` that fails on a full disk instead of writing a truncated file (``CheckedWrites``)."""
    with open(path, "wb") as f:
        np.save(CheckedWrites(f), array, allow_pickle=False)


#: per folder, the temporary files of dead writers on this machine, listed at the first write into it
_STALE_PARTS: dict[str, list[Path]] = {}


def sweep_stale_parts(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that writers of ``path`` killed on this machine (``kill -9``, power loss)
    left beside it; those of live processes, and of other machines sharing the folder, stay. A folder is
    listed once per process (a batch writing thousands of outputs into it must not list it for each one)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    key = str(folder.absolute())
    if key not in _STALE_PARTS:
        parts = folder.glob(f".*.{_HOST}-*.part")
        _STALE_PARTS[key] = [p for p in parts if not _alive(_writer_pid(p))]
    mine = [p for p in _STALE_PARTS[key]
            if p.name.startswith(f".{path.stem}.{_HOST}-") and p.name.endswith(f"{path.suffix}.part")]
    removed = []
    for part in mine:
        _STALE_PARTS[key].remove(part)
        try:
            shutil.rmtree(part) if part.is_dir() else part.unlink()  # a Zarr store's is a folder
            removed.append(part)
        except OSError:
            pass
    return removed


def _writer_pid(part: Path) -> int:
    """The pid in a temporary file's name (0, taken for alive, when there is none)."""
    pid = part.name.rsplit(f".{_HOST}-", 1)[-1].split(".", 1)[0]
    return int(pid) if pid.isdigit() else 0


def _alive(pid: int) -> bool:
    if pid <= 0:  # not a pid: never removed
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def ensure_parent(path: str | os.PathLike) -> None:
    """Create the folder of an output path, or fail with a one-line error."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _fail(path, f"cannot create its folder ({e.strerror})") from None


def write_image(path: str | os.PathLike, array: np.ndarray, info: ImageInfo | None = None) -> None:
    """Write an array in [0, 1] (as returned by ``read_image``/``denoise``) in the input's form.

    The format follows the suffix; without ``info`` the output is 8-bit (16-bit TIFF/PNG when asked
    through ``info``). JPEG/BMP cannot hold 16 bits: such data is written as 8-bit with a warning.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise _fail(path, f"unsupported output format '{suffix}' (use one of {', '.join(IMAGE_SUFFIXES)})")
    if info is None:  # 8-bit images; NPY keeps float32 values as they are (unclipped)
        info = ImageInfo(dtype="float32" if suffix == ".npy" else "uint8", gray_2d=array.ndim == 2,
                         channels=array.shape[-1] if array.ndim >= 3 else 1, stack=array.ndim == 4)
    if array.ndim == 2:
        array = array[..., None]
    data = from_unit_range(array, info)
    if info.axes:
        if suffix not in (".npy", ".tif", ".tiff"):
            raise _fail(path, f"an array with axes {info.axes} can only be written as .tif/.tiff or .npy")
        data = restore_axes(data, info.axes, info.layout)
    if suffix == ".npy":
        atomic_write(path, lambda tmp: save_npy(tmp, data))
        return
    if suffix in (".tif", ".tiff"):
        import tifffile

        def write_tiff(tmp):
            buffer = stdio.BytesIO()  # then one checked write: tifffile's own file writes lose a full disk's error
            if info.ome:  # the axes the input's metadata named go with the output, as OME metadata
                tifffile.imwrite(buffer, data, photometric="minisblack", ome=True, metadata={"axes": info.axes})
            else:
                photometric = "rgb" if data.shape[-1] == 3 and data.ndim >= 3 and not info.gray_2d else "minisblack"
                tifffile.imwrite(buffer, data, photometric=photometric)
            with open(tmp, "wb") as f:
                f.write(buffer.getbuffer())

        atomic_write(path, write_tiff)
        return
    if info.stack:
        raise _fail(path, "a stack can only be written as .tif/.tiff or .npy")
    if data.dtype not in (np.uint8, np.uint16):
        data = np.round(np.clip(np.asarray(array, np.float64), 0, 1) * 255).astype(np.uint8)
        data = data[..., 0] if data.shape[-1] == 1 else data
    if data.dtype == np.uint16 and (suffix != ".png" or data.ndim == 3):
        # PIL writes 16-bit only for single-channel PNG; keep 16 bits via TIFF when that matters.
        warnings.warn(f"{path}: {suffix} cannot hold 16-bit {'colour' if data.ndim == 3 else ''} data; "
                      "writing 8-bit (use .tif to keep 16 bits)", stacklevel=2)
        data = np.round(data.astype(np.float64) / 257.0).astype(np.uint8)
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    from PIL import Image

    def write_pil(tmp):
        im = Image.fromarray(data)
        kw = {"quality": 95} if suffix in (".jpg", ".jpeg") else {}
        im.save(tmp, format={".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP"}[suffix], **kw)

    atomic_write(path, write_pil)
