"""OME-Zarr and plain Zarr arrays, read and written block by block (out of core).

A *block* is the unit of work: whole Y-X planes (and colour channels) over one chunk (one shard when the
array is sharded) of every other axis. The networks and classical methods denoise a stack plane by plane,
so a block holds complete planes and its result is exactly what the in-memory path gives those planes;
Y and X are never split (a plane must fit in memory, as in ``io.read_image``). Each output chunk belongs to
exactly one block, so blocks can be written in any order, by several processes, without locks.

A model of volumes works on whole ZYX volumes instead (``volumes``, ``volume_io``): it reads a volume tile by
tile and writes its planes as they are finished (``core.tiling.apply_tiled_volume``): memory holds one run of
at most ``core.tiling.DEPTH_TILE`` planes, whatever the depth.

``zarr`` is an optional dependency (``pip install 'selfdenoise[zarr]'``), imported when a store is opened.
"""
from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import io
from .errors import MissingDependencyError

#: NGFF axis types and names in our letters (``io.AXES``)
_OME_TYPES = {"time": "T", "channel": "C"}
#: the order NGFF requires: time, channel, then space (z, y, x)
NGFF_ORDER = "TCZYX"


def _zarr():
    try:
        import zarr
    except ImportError:
        raise MissingDependencyError("Zarr input and output need zarr: pip install 'selfdenoise[zarr]'") from None
    return zarr


@dataclass
class ZarrSource:
    """An opened input: its level-0 array, axes, OME group attributes (None for a plain array) and the
    ``io.ImageInfo`` that maps its values to [0, 1] and back."""

    path: str
    array: object
    axes: str
    ome: dict | None = None
    unit: io.ImageInfo = field(default_factory=io.ImageInfo)

    @property
    def colour(self) -> bool:
        """The C axis holds 1 or 3 channels of one image (else each channel is denoised on its own)."""
        return "C" in self.axes and self.array.shape[self.axes.index("C")] in (1, 3)

    @property
    def frames(self) -> int:
        """How many 2-D images the array holds (the in-memory path's stack length)."""
        sizes = [n for a, n in zip(self.axes, self.array.shape) if a not in "YX" and not (a == "C" and self.colour)]
        return int(np.prod(sizes, dtype=np.int64))


def _multiscale(attrs: dict) -> dict | None:
    """The first NGFF multiscale image of a group's attributes (0.4: top level; 0.5: under ``ome``)."""
    scales = attrs.get("ome", attrs).get("multiscales")
    return scales[0] if scales else None


def _ome_axes(entries: list) -> str | None:
    """NGFF axes (dicts, or names before 0.4) in our letters; None when one has no meaning here."""
    pairs = [(e, "") if isinstance(e, str) else (str(e.get("name", "")), str(e.get("type", ""))) for e in entries]
    axes = "".join(_OME_TYPES.get(kind.lower()) or name.upper() for name, kind in pairs)
    return axes if len(axes) == len(entries) and set(axes) <= set(io.AXES) and len(set(axes)) == len(axes) else None


def open_zarr(path: str | os.PathLike, axes: str | None = None, max_pixels: int | None = None) -> ZarrSource:
    """Open an OME-Zarr image (its full-resolution level) or a plain Zarr array. Axes come from the NGFF
    metadata, else from ``axes``; a plain array of more than 2 dimensions without them is refused."""
    zarr = _zarr()
    if not Path(path).exists():
        raise io._fail(path, "no such Zarr store")
    try:  # by absolute path: the arrays are pickled to cluster workers, whose working folder may differ
        node = zarr.open(str(Path(path).absolute()), mode="r")
    except Exception as e:  # zarr raises many types for broken stores
        raise io._fail(path, f"not a readable Zarr store ({type(e).__name__}: {e})") from None
    ome = None
    if isinstance(node, zarr.Group):
        ome = dict(node.attrs)
        node, axes = _ome_level0(node, ome, axes, path)
    elif axes is None:
        if node.ndim != 2:
            raise io._fail(path, f"shape {node.shape}: a Zarr array without OME metadata needs --axes "
                                 "(e.g. ZYX, TYX, CYX, TZYX)")
        axes = "YX"
    source = ZarrSource(str(path), node, io.check_axes(axes, node.shape, path), ome)
    _check_planes(source, max_pixels)
    source.unit = unit_info(source)
    return source


def _ome_level0(group, attrs: dict, axes: str | None, path) -> tuple[object, str]:
    """An OME group's full-resolution array and its axes (the metadata's; ``axes`` must agree with them)."""
    scale = _multiscale(attrs)
    if scale is None:
        raise io._fail(path, "a Zarr group without OME-NGFF multiscales metadata; give the array itself")
    try:
        array = group[scale["datasets"][0]["path"]]
    except (KeyError, IndexError, TypeError):
        raise io._fail(path, "its OME metadata names no readable full-resolution array") from None
    named = _ome_axes(scale.get("axes", []))
    if named is None and axes is None:
        raise io._fail(path, f"OME axes {scale.get('axes')} are not all T, C, Z, Y, X; name them with --axes")
    if named is not None and axes is not None and io.check_axes(axes, array.shape, path) != named:
        raise io._fail(path, f"--axes {axes.upper()} contradicts the file's OME axes {named}")
    return array, named or axes


def _check_planes(source: ZarrSource, max_pixels: int | None) -> None:
    h, w = (source.array.shape[source.axes.index(a)] for a in "YX")
    if h < io.MIN_SIDE or w < io.MIN_SIDE:
        raise io._fail(source.path, f"planes are {h}x{w}; at least {io.MIN_SIDE}x{io.MIN_SIDE} pixels are needed")
    io._check_pixels(source.path, h, w, io.MAX_PIXELS if max_pixels is None else int(max_pixels))
    if source.array.dtype.kind not in "biuf":
        raise io._fail(source.path, f"unsupported data type {source.array.dtype}")


def unit_info(source: ZarrSource) -> io.ImageInfo:
    """What ``io.read_image`` would derive from the whole array: 8/16-bit data are scaled by their type's
    range; other integers and floats outside [0, 1] by the array's minimum and maximum, found in one pass
    over its blocks (NaN/Inf refused)."""
    dtype = source.array.dtype
    if dtype in (np.bool_, np.uint8, np.uint16):
        return io.ImageInfo(path=source.path, dtype="uint8" if dtype == np.bool_ else str(dtype))
    lo, hi = np.inf, -np.inf
    for region in blocks(source):
        part = np.asarray(source.array[region])
        if dtype.kind == "f" and not np.all(np.isfinite(part)):
            raise io._fail(source.path, "contains NaN/Inf values")
        lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    info = io.ImageInfo(path=source.path, dtype=str(dtype))
    if dtype.kind in "iu":
        info.offset, info.scale = lo, max(hi - lo, 1.0)
    elif lo < 0.0 or hi > 1.0:
        info.offset, info.scale = lo, (hi - lo) if hi > lo else 1.0
    return info


def to_unit(frame: np.ndarray, unit: io.ImageInfo) -> np.ndarray:
    """One frame in [0, 1] float32, by the same arithmetic as ``io.read_image`` on the whole array."""
    if frame.dtype in (np.bool_, np.uint8, np.uint16):
        return io._to_unit_range(frame, unit.path)[0]
    if frame.dtype.kind == "f" and unit.offset == 0.0 and unit.scale == 1.0:
        return frame.astype(np.float32)
    return ((frame.astype(np.float64) - unit.offset) / unit.scale).astype(np.float32)


def block_shape(source: ZarrSource) -> tuple[int, ...]:
    """A block's extent along each axis: a shard (else a chunk) along the stack axes, all of Y, X and of
    colour channels."""
    unit = source.array.shards or source.array.chunks
    whole = set("YX") | ({"C"} if source.colour else set())
    return tuple(n if a in whole else c for a, n, c in zip(source.axes, source.array.shape, unit))


def blocks(source: ZarrSource) -> list[tuple[slice, ...]]:
    """The regions that tile the array, one per block (see ``block_shape``)."""
    shape, step = source.array.shape, block_shape(source)
    starts = itertools.product(*(range(0, n, s) for n, s in zip(shape, step)))
    return [tuple(slice(b, min(b + s, n)) for b, s, n in zip(start, step, shape)) for start in starts]


def as_frames(block: np.ndarray, axes: str, colour: bool) -> tuple[np.ndarray, tuple]:
    """A block as (frames, Y, X, C) (C = 1 unless ``colour``), and the layout ``from_frames`` undoes."""
    lead = [a for a in axes if a not in "YX" and not (a == "C" and colour)]
    order = lead + ["Y", "X"] + (["C"] if colour else [])
    arranged = block.transpose([axes.index(a) for a in order])
    h, w = arranged.shape[len(lead):len(lead) + 2]
    return arranged.reshape(-1, h, w, arranged.shape[-1] if colour else 1), (order, arranged.shape)


def from_frames(frames: np.ndarray, axes: str, layout: tuple) -> np.ndarray:
    order, shape = layout
    return frames.reshape(shape).transpose([order.index(a) for a in axes])


def denoise_block(source: ZarrSource, target, region: tuple[slice, ...], fn) -> int:
    """Read one block, denoise its frames one by one with ``fn`` ((H, W, C) float32 in [0, 1] -> the same)
    and write the result into ``target`` (a Zarr array shaped like the source). Returns the frame count."""
    frames, layout = as_frames(np.asarray(source.array[region]), source.axes, source.colour)
    out = np.empty(frames.shape, dtype=np.dtype(source.unit.dtype))
    for i, frame in enumerate(frames):
        out[i] = io.from_unit_range(np.asarray(fn(to_unit(frame, source.unit)), np.float32).reshape(frame.shape),
                                    source.unit)
    target[region] = from_frames(out, source.axes, layout)
    return len(frames)


def volumes(source: ZarrSource) -> list[tuple]:
    """One key per ZYX volume of the array, for a model of volumes: the volume's index along every other axis
    (None for Z, Y, X and colour channels). A one-line error when the axes have no Z."""
    if "Z" not in source.axes:
        raise io._fail(source.path, f"axes {source.axes} have no Z; a model of volumes needs a volume (e.g. --axes ZYX)")
    whole = _volume_axes(source)
    return list(itertools.product(*([None] if a in whole else range(n) for a, n in zip(source.axes, source.array.shape))))


def _volume_axes(source: ZarrSource) -> set[str]:
    """The axes one volume holds whole: Z, Y, X and colour channels."""
    return set("ZYX") | ({"C"} if source.colour else set())


def volume_shape(source: ZarrSource) -> tuple[int, int, int, int]:
    """(Z, Y, X, C) of each volume (C = 1 unless colour)."""
    size = dict(zip(source.axes, source.array.shape))
    return size["Z"], size["Y"], size["X"], size["C"] if source.colour else 1


def volume_io(source: ZarrSource, target, key: tuple):
    """``(read, write)`` for the volume ``key`` (of ``volumes``): ``read(z, y, x)`` (slices) gives its voxels
    there as (n, h, w, C) float32 in [0, 1], by ``io.read_image``'s arithmetic; ``write(z, planes)`` puts
    (n, Y, X, C) float32 in [0, 1] back into ``target`` at planes ``z``, in the source's dtype and range."""
    kept = [a for a, k in zip(source.axes, key) if k is None]  # Z, Y, X (and colour C), in the array's order
    to_zyxc = [kept.index(a) for a in "ZYXC" if a in kept]
    back = list(np.argsort(to_zyxc))

    def index(z: slice, y: slice, x: slice) -> tuple:
        spatial = {"Z": z, "Y": y, "X": x}
        return tuple(spatial.get(a, slice(None)) if k is None else k for a, k in zip(source.axes, key))

    def read(z: slice, y: slice, x: slice) -> np.ndarray:
        block = np.asarray(source.array[index(z, y, x)]).transpose(to_zyxc)
        return to_unit(block if "C" in kept else block[..., None], source.unit)

    def write(z: slice, planes: np.ndarray) -> None:
        out = io.from_unit_range(planes, source.unit).reshape(planes.shape)
        target[index(z, slice(None), slice(None))] = (out if "C" in kept else out[..., 0]).transpose(back)

    return read, write


def volumes_share_chunks(source: ZarrSource) -> bool:
    """Whether a chunk (shard) of the array spans more than one volume: then volumes cannot be written by
    several processes at once."""
    unit = source.array.shards or source.array.chunks
    return any(c > 1 for a, c in zip(source.axes, unit) if a not in _volume_axes(source))


def create_output(source: ZarrSource, store: str | os.PathLike, ome: bool) -> object:
    """An empty output array at ``store``, like the source's level 0 (shape, chunks, shards, codecs, Zarr
    format, dtype); with ``ome``, inside a group carrying the source's NGFF metadata (level 0 only), or
    new NGFF metadata (scale 1) for a plain source."""
    zarr = _zarr()
    a = source.array
    fmt = a.metadata.zarr_format
    name = None
    if ome:
        attrs = _level0_attrs(source.ome) if source.ome else _new_ngff(source.axes, fmt, source.path)
        zarr.open_group(str(store), mode="w", zarr_format=fmt, attributes=attrs)
        name = _multiscale(attrs)["datasets"][0]["path"]
    options = {"shards": a.shards, "dimension_names": a.metadata.dimension_names, "serializer": a.serializer,
               "chunk_key_encoding": a.metadata.chunk_key_encoding} if fmt == 3 else \
        {"chunk_key_encoding": {"name": "v2", "separator": a.metadata.dimension_separator}}
    return zarr.create_array(str(store), name=name, shape=a.shape, chunks=a.chunks, dtype=source.unit.dtype,
                             filters=a.filters, compressors=a.compressors, fill_value=a.fill_value, zarr_format=fmt,
                             attributes=dict(a.attrs), **options)


def _level0_attrs(attrs: dict) -> dict:
    """A copy of an OME group's attributes whose first multiscale image lists its full resolution only."""
    out = dict(attrs)
    holder = out
    if "ome" in out:
        holder = out["ome"] = dict(out["ome"])
    first = {**holder["multiscales"][0]}
    first["datasets"] = first["datasets"][:1]
    holder["multiscales"] = [first]
    return out


def _new_ngff(axes: str, zarr_format: int, path) -> dict:
    """NGFF metadata for an array with ``axes`` (0.4 for Zarr v2, 0.5 for v3), scale 1 on every axis."""
    if "S" in axes or [a for a in NGFF_ORDER if a in axes] != list(axes):
        raise io._fail(path, f"axes {axes} are not in OME-NGFF order (T, C, Z, Y, X); write a plain .zarr instead")
    kinds = {"T": "time", "C": "channel"}
    image = {"axes": [{"name": a.lower(), "type": kinds.get(a, "space")} for a in axes],
             "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0] * len(axes)}]}]}
    if zarr_format == 2:
        return {"multiscales": [{"version": "0.4", **image}]}
    return {"ome": {"version": "0.5", "multiscales": [image]}}


def atomic_store(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp)`` to fill a temporary sibling store, then rename it to ``path``: an interrupted run
    leaves no half-written store under the final name (its ``.part`` folder is removed, or swept by the next
    write of ``path`` if the process was killed). An existing store at ``path`` is replaced; anything else
    there is refused."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise io._fail(path, f"cannot write: folder {folder} does not exist")
    if path.exists() and not io.is_zarr(path):
        raise io._fail(path, "exists and is not a Zarr store; not replaced")
    io.sweep_stale_parts(path)
    prefix = f".{path.stem}.{io._HOST}-{os.getpid()}."
    try:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=path.suffix + ".part", dir=folder))
    except OSError as e:
        raise io._fail(path, f"cannot write ({e.strerror})") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; outputs get the usual permissions
        write(tmp)
        old = None
        if path.exists():  # moved aside, then removed: the final name never holds a partial store
            old = Path(tempfile.mkdtemp(prefix=prefix, suffix=path.suffix + ".part", dir=folder))
            os.replace(path, old / "old")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise io._fail(path, f"cannot write ({e.strerror or e})") from None
        raise
