"""The public Python API. The CLI is a thin wrapper over these functions."""
from __future__ import annotations

import dataclasses
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from . import zoo
from .classical.noise_level import estimate_sigma as _estimate_sigma
from .core import cluster, io, zarr_io
from .core.compare_page import ComparePage
from .core.errors import InputError
from .core.metrics import evaluate_pair
from .core.noise import add_noise as _add_noise
from .core.noise import parse_noise
from .core.progress import tqdm
from .methods import registry
from .methods.base import NamedNetMethod
from .methods.contract import DataNeeds
from .modelfile import load_model as _load_model
from .modelfile import save_model
from .sequences.tracks import (
    check_sequence,
    gap_summary,
    is_sequence_file,
    read_sequence,
    write_sequence,
)
from .training import (
    TrainConfig,
    TrainingSet,
    from_arrays,
    from_volumes,
    load_clean_folder,
    load_folder,
    load_volumes,
    previous_checkpoint,
    read_checkpoint,
)
from .training import train as _train
from .training.distributed import end_process_group, is_rank0

#: float arrays given without ``data_range`` must lie in [0, 1] up to noise: values beyond these are refused
#: (Gaussian noise of sigma 50 on 0-255 reaches 1.8 on a white image; data in 0-255 lies far beyond)
FLOAT_SLACK = (-1.0, 2.0)
#: the range checked is that of the values between this quantile and its complement (noise draws of millions
#: of pixels reach beyond any fixed slack; the check is about the data's scale), on at most ``RANGE_SAMPLE`` values
ROBUST_QUANTILE = 1e-4
RANGE_SAMPLE = 1 << 20


def _range_pair(data_range) -> tuple[float, float]:
    """``data_range`` as (low, high): a number is (0, number)."""
    try:
        lo, hi = (0.0, float(data_range)) if np.isscalar(data_range) else (float(v) for v in data_range)
    except (TypeError, ValueError):
        raise InputError(f"data_range must be a number or a (low, high) pair, got {data_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise InputError(f"data_range must have low < high, got {data_range!r}")
    return lo, hi


def as_float_image(image, name: str = "image") -> tuple[np.ndarray, bool]:
    """Validate a user array and give float32 (H, W, C) in [0, 1] plus whether it was 2-D.

    The contract: uint8 and uint16 arrays are scaled by their full range; float arrays are in [0, 1] (noisy
    values a little outside are fine, within ``FLOAT_SLACK``); anything else (floats in 0-255, 12-bit data in
    int32, ...) is refused: ``denoise(..., data_range=)`` maps such data to [0, 1] and back. Axes are (H, W) or
    (H, W, C) with C = 1, 3 or 4, never guessed. The range checked is that between the ``ROBUST_QUANTILE``
    and its complement (Poisson noise at a few photons takes single pixels beyond any fixed slack)."""
    arr = np.asarray(image)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name}: {arr.dtype} values have no standard range; scale the array to [0, 1] or call "
                         "denoise(..., data_range=...) (e.g. 4095 for 12-bit data)")
    elif not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{name}: unsupported data type {arr.dtype}")
    elif arr.size and np.all(np.isfinite(arr)):
        flat = arr.reshape(-1)[::max(1, arr.size // RANGE_SAMPLE)]
        lo, hi = np.quantile(flat, (ROBUST_QUANTILE, 1 - ROBUST_QUANTILE))
        lo, hi = float(lo), float(hi)
        if lo < FLOAT_SLACK[0] or hi > FLOAT_SLACK[1]:
            raise InputError(f"{name}: float values span {lo:.4g}..{hi:.4g}, not [0, 1]; scale the array or call "
                             "denoise(..., data_range=...) (e.g. 255)")
    if arr.ndim not in (2, 3):
        raise InputError(f"{name}: expected an HxW or HxWxC array, got shape {arr.shape}")
    gray_2d = arr.ndim == 2
    if gray_2d:
        arr = arr[..., None]
    if arr.shape[-1] == 4:
        warnings.warn(f"{name}: alpha channel dropped", stacklevel=3)
        arr = arr[..., :3]
    if arr.shape[-1] not in (1, 3):
        raise InputError(f"{name}: expected 1 or 3 channels, got {arr.shape[-1]}")
    if min(arr.shape[:2]) < io.MIN_SIDE:
        raise InputError(f"{name}: image is {arr.shape[0]}x{arr.shape[1]}; at least "
                         f"{io.MIN_SIDE}x{io.MIN_SIDE} pixels are needed")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: contains NaN/Inf values")
    return np.ascontiguousarray(arr, dtype=np.float32), gray_2d


def as_float_volume(volume, name: str = "volume") -> tuple[np.ndarray, bool]:
    """Validate a user volume (Z, H, W) or (Z, H, W, C) and give float32 (Z, H, W, C) in [0, 1] plus whether it
    had no channel axis; values as ``as_float_image`` takes them (its planes are checked as one tall
    image)."""
    arr = np.asarray(volume)
    if arr.ndim not in (3, 4):
        what = "a 2-D image" if arr.ndim == 2 else f"shape {arr.shape}"
        raise InputError(f"{name}: a 3-D model denoises volumes (Z, Y, X) or (Z, Y, X, C), not {what}")
    if arr.shape[1] < io.MIN_SIDE:
        raise InputError(f"{name}: planes of {arr.shape[1]} rows; at least {io.MIN_SIDE} are needed")
    planes, gray = as_float_image(arr.reshape(arr.shape[0] * arr.shape[1], *arr.shape[2:]), name)
    return planes.reshape(arr.shape[0], arr.shape[1], *planes.shape[1:]), gray


def _parse_sigma(sigma) -> float | None:
    if sigma is None or (isinstance(sigma, str) and sigma.strip().lower() == "auto"):
        return None
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise InputError(f"sigma must be a number in 0-255 units or 'auto', got {sigma!r}") from None
    if not np.isfinite(value) or value < 0:
        raise InputError(f"sigma must be a non-negative number in 0-255 units, got {sigma!r}")
    return value


def denoise(image, method: str = "zero-shot", *, model=None, sigma: float | str | None = "auto", seed: int = 0,
            tile: int | None = None, progress: bool = False, data_range=None, init=None, **options) -> np.ndarray:
    """Denoise one image (H, W) or (H, W, C) in [0, 1] (uint8/uint16 arrays are scaled; any other range
    needs ``data_range``, see ``as_float_image``).

    ``method``: ``zero-shot`` (default; fits a small network to this image alone), ``nlm``, ``bm3d``,
    or a dataset method that can also fit the one image (``asym-mask``, ``n2v``, ``n2v2``, ``struct-n2v``).
    ``model``: a trained model (file path or ``load_model`` result); then ``method`` is ignored and
    ``options`` may set ``tta`` (flips/rotations averaged).
    A model of volumes (``ne2ne-3d``) takes one volume (Z, H, W) or (Z, H, W, C) instead of an image.
    ``sigma`` (0-255 units) is used by the classical methods; ``"auto"`` estimates it.
    ``init``: a model file (or ``zoo:NAME``) whose weights the fit to this image starts from: one of ``method`` for
    the methods that are trained on a data set and can also fit one image (``self2self``, ``n2v``, ``asym-mask``,
    ...); for ``zero-shot``, any model of the compact UNet (``zoo:gauss-color``), which replaces its shipped prior.
    ``options`` go to the method (e.g. ``budget=30`` seconds for zero-shot).
    Returns float32 in [0, 1], the same shape as the input (in ``data_range`` when one is given).
    """
    if data_range is not None:  # map to [0, 1] and back
        lo, hi = _range_pair(data_range)
        scaled = ((np.asarray(image, dtype=np.float64) - lo) / (hi - lo)).astype(np.float32)
        out = denoise(scaled, method, model=model, sigma=sigma, seed=seed, tile=tile, progress=progress, init=init,
                      **options)
        return out * np.float32(hi - lo) + np.float32(lo)
    if init is not None and (model is not None or not _starts_from_weights(method)):
        fitted = [n for n in registry.names("single-image") if _starts_from_weights(n)]
        raise InputError(f"init: a model to start fitting one image from, for {', '.join(fitted)} (not with model=)")
    if model is not None and not isinstance(model, TrainedModel):
        model = load_model(model)
    if model is not None and model.volumetric:  # a volume (Z, H, W[, C]), checked by the model
        return model.denoise(image, tile=tile, **options)
    img, gray_2d = as_float_image(image)
    s = _parse_sigma(sigma)
    if model is not None:
        trained = model if isinstance(model, TrainedModel) else load_model(model)
        out = trained.denoise(img, tile=tile, **options)
    elif registry.is_classical(method):
        fn = registry.get_classical(method)
        out = fn(img, sigma=s, **registry.check_options(method, options))
    else:
        m = registry.get_method(method, **({"tile": tile} if tile else {}), **options)
        if "single-image" not in registry.kinds(method):  # zero-shot, or a dataset method that can also fit one image
            raise InputError(f"method '{method}' is trained on a data set first: `selfdenoise train --method "
                             f"{method} ...`, then denoise with --model FILE")
        start = {"weights": _initial_weights(init, m, img.shape[-1])} if init is not None else {}
        shape = img.shape
        x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
        del img  # a 24-MP photo: one float32 copy (288 MB) fewer while the method runs
        y = m.fit_denoise(x, seed=seed, progress=progress, **start)
        del x
        out = np.ascontiguousarray(y[0].permute(1, 2, 0).detach().cpu().numpy(), dtype=np.float32).reshape(shape)
        del y
        np.clip(out, 0.0, 1.0, out=out)
        return out[..., 0] if gray_2d else out
    out = np.clip(np.asarray(out, dtype=np.float32).reshape(img.shape), 0.0, 1.0)
    return out[..., 0] if gray_2d else out


def add_noise(image, spec: str, seed: int = 0) -> np.ndarray:
    """Add seeded synthetic noise from a spec string (``gauss:25``, ``poisson:30``, ...). Unclipped."""
    img = np.asarray(image)
    if img.dtype in (np.uint8, np.uint16):
        img, gray = as_float_image(img)
        img = img[..., 0] if gray else img
    return _add_noise(img, spec, seed=seed)


def add_noise_files(inputs: list[str | os.PathLike], output: str | os.PathLike, spec: str, seed: int = 0) -> list[Path]:
    """Add seeded noise to image files (input ``i`` gets ``seed + i``) and write them like ``output_paths``
    pairs them. NPY outputs keep the unclipped float values; image formats clip to the input's range."""
    model = parse_noise(spec)  # a bad spec fails before any file is read
    written = []
    for i, (src, dst) in enumerate(output_paths(list(inputs), output)):
        img, info = io.read_image(src)
        noisy = add_noise(img, model.spec, seed=seed + i)
        io.ensure_parent(dst)
        io.write_image(dst, noisy, None if dst.suffix.lower() == ".npy" else info)
        written.append(dst)
    return written


def evaluate(clean, test) -> dict:
    """PSNR, SSIM, EPI (ratio and correlation forms) and GCMSE of ``test`` against ``clean``,
    computed on uint8-quantised images as in the benchmark protocol."""
    a, _ = as_float_image(clean, "clean")
    b, _ = as_float_image(test, "test")
    if a.shape != b.shape:
        raise InputError(f"clean and test differ in shape: {a.shape} vs {b.shape}")
    return evaluate_pair(a, b)


def estimate_sigma(image, stride: int | str = "auto") -> float:
    """Noise level in 0-255 units (patch-PCA estimator; see ``classical.noise_level.estimate_sigma``):
    ``stride="auto"`` estimates on stride-3 pixel-shuffle sub-images when the noise is spatially correlated
    (real camera noise), on the image itself when it is white; 1 or 3 force one."""
    img, _ = as_float_image(image)
    return _estimate_sigma(img, stride=stride)


def output_paths(inputs: list[str | os.PathLike], output: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Pair each input file with its output path. One input file and an output with an image suffix
    give that file; otherwise ``output`` is a folder and each result keeps its input's name."""
    files: list[Path] = []
    for p in inputs:
        files.extend(io.list_images(p))
    out = Path(output)
    if len(files) == 1 and len(inputs) == 1 and (not Path(inputs[0]).is_dir() or io.is_zarr(inputs[0])) and out.suffix:
        if io.is_zarr(files[0]) != (out.suffix.lower() == ".zarr"):
            raise InputError(f"{out}: a Zarr input is written as .zarr (.ome.zarr), and only a Zarr input is")
        if out.suffix.lower() not in (*io.IMAGE_SUFFIXES, ".zarr"):
            raise InputError(f"{out}: unsupported output format '{out.suffix}'")
        return [(files[0], out)]
    if out.suffix.lower() in (*io.IMAGE_SUFFIXES, ".zarr"):
        raise InputError(f"{out}: several inputs need an output folder, not a file name")
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise InputError(f"{out}: inputs from different folders share file names; denoise them separately")
    return [(f, out / f.name) for f in files]


def denoise_file(src: str | os.PathLike, dst: str | os.PathLike, method: str = "zero-shot", *,
                 progress: bool = False, report: bool | ComparePage = False, max_pixels: int | None = None,
                 axes: str | None = None, **kwargs) -> dict:
    """Read ``src``, denoise it (a multi-page stack slice by slice; with a model of volumes, each ZYX volume
    whole, see ``io.as_volumes``) and write ``dst`` atomically in the input's dtype, channels and range.
    Returns {"input", "output", "seconds", "slices"}.

    ``report=True`` also writes a before/after page for this image next to ``dst`` (``denoise_report``);
    a ``ComparePage`` gets this image added instead (call its ``write()`` once all images are in).
    ``max_pixels``: larger images are refused before decoding (default ``io.MAX_PIXELS``). ``axes`` (e.g.
    ``"ZYX"``, ``"CYX"``, ``"TZYX"``) names the dimensions of a TIFF or NPY (see ``io.read_image``); the
    output keeps them. A Zarr store is denoised out of core (``denoise_zarr``)."""
    if io.is_zarr(src):
        if report is not False:
            raise InputError(f"{src}: --report shows images in memory; a Zarr store has no before/after page")
        return denoise_zarr(src, dst, method, progress=progress, max_pixels=max_pixels, axes=axes, **kwargs)
    t0 = time.perf_counter()
    img, info = io.read_image(src, max_pixels, axes)
    try:
        if isinstance(kwargs.get("model"), (str, os.PathLike)):
            kwargs["model"] = load_model(kwargs["model"])
        if kwargs.get("model") is not None and kwargs["model"].volumetric:  # whole volumes, not slice by slice
            volumes = io.as_volumes(img, info, src)
            out = np.stack([denoise(v, progress=False, **kwargs) for v in volumes]).reshape(img.shape)
        elif info.stack:
            slices = [denoise(s, method, progress=False, **kwargs)
                      for s in tqdm(img, desc=Path(src).name, unit="slice", disable=not progress, leave=False)]
            out = np.stack([s if s.ndim == 3 else s[..., None] for s in slices])
        else:
            out = denoise(img, method, progress=progress, **kwargs)
            out = out if out.ndim == 3 else out[..., None]
    except InputError as e:  # name the file in errors about its content (e.g. too small for a method)
        if str(src) in str(e):
            raise
        raise InputError(f"{src}: {e}") from None
    io.ensure_parent(dst)
    io.write_image(dst, out, info)
    result = {"input": str(src), "output": str(dst), "seconds": time.perf_counter() - t0,
              "slices": len(img) if info.stack else 1}
    if report is True or isinstance(report, ComparePage):
        page = denoise_report(dst) if report is True else report
        name, versions = _report_versions(src, img, out, info, method, kwargs.get("model"))
        page.add(name, versions)
        if report is True:
            result["report"] = str(page.write())
    return result


#: methods that fit each image (zero-shot, n2v2, ...) refuse Zarr inputs of more 2-D images than this: hours of
#: fitting; train a model on a few (`selfdenoise train`) and denoise with it (``model=``)
FIT_FRAMES_LIMIT = 64


def denoise_zarr(src: str | os.PathLike, dst: str | os.PathLike, method: str = "zero-shot", *,
                 axes: str | None = None, max_pixels: int | None = None, progress: bool = False, scheduler=None,
                 **kwargs) -> dict:
    """Denoise an OME-Zarr image (its full-resolution level) or a plain Zarr array out of core, block by
    block (``core.zarr_io``: whole Y-X planes over one chunk of the other axes), into ``dst``: an OME-Zarr
    with the input's metadata (level 0) when the input has it or ``dst`` ends in ``.ome.zarr``, else a
    plain array; the same shape, chunks, codecs and dtype either way. The result equals ``denoise_file`` on
    the array read into memory (each plane is denoised by ``denoise`` exactly as there; with a model of
    volumes each ZYX volume, read tile by tile and written as its planes are finished,
    ``TrainedModel.denoise_streamed``). ``axes``: for a
    plain array of more than 2 dimensions (an OME input names its own). ``scheduler`` (``"local:4"``, an
    address, or a ``distributed.Client``): one task per block on a Dask cluster. Written atomically.
    Returns {"input", "output", "seconds", "slices", "blocks"} (blocks: volumes, with a model of volumes)."""
    t0 = time.perf_counter()
    source = zarr_io.open_zarr(src, axes, max_pixels)
    if kwargs.get("model") is None and not registry.is_classical(method) and source.frames > FIT_FRAMES_LIMIT:
        raise InputError(f"{src}: method '{method}' fits each of its {source.frames} images (the limit is "
                         f"{FIT_FRAMES_LIMIT}); train a model on a few (`selfdenoise train`) and use --model")
    if isinstance(kwargs.get("model"), (str, os.PathLike)):
        kwargs["model"] = _cached_model(kwargs["model"])
    volumetric = kwargs.get("model") is not None and kwargs["model"].volumetric
    regions = zarr_io.volumes(source) if volumetric else zarr_io.blocks(source)
    task = _denoise_volume_task if volumetric else _denoise_block_task
    ome = source.ome is not None or str(dst).lower().endswith(".ome.zarr")

    def write(tmp):
        target = zarr_io.create_output(source, Path(tmp).absolute(), ome)
        if scheduler is None:
            for region in tqdm(regions, desc=Path(src).name, unit="volume" if volumetric else "block",
                               disable=not progress, leave=False):
                task(source, target, region, method, kwargs)
            return
        portable = _portable(kwargs)
        if volumetric and zarr_io.volumes_share_chunks(source):  # one writer per chunk: the volumes in turn
            tasks = [(source, target, tuple(regions), method, portable)]
            fn = _denoise_volumes_task
        else:
            tasks, fn = [(source, target, r, method, portable) for r in regions], task
        with cluster.connect(scheduler) as client:
            cluster.run_tasks(client, fn, tasks)

    io.ensure_parent(dst)
    try:
        zarr_io.atomic_store(dst, write)
    except InputError as e:  # name the store in errors about its content (e.g. a model for other channels)
        if str(src) in str(e) or str(dst) in str(e):
            raise
        raise InputError(f"{src}: {e}") from None
    return {"input": str(src), "output": str(dst), "seconds": time.perf_counter() - t0, "slices": source.frames,
            "blocks": len(regions)}


def _frame_denoiser(method: str, kwargs: dict):
    """One 2-D image (H, W, C) -> denoised, as ``denoise_file`` denoises each slice of a stack."""
    return lambda frame: denoise(frame, method, progress=False, **kwargs)


def _denoise_block_task(source, target, region, method: str, kwargs: dict) -> int:
    """A share of ``denoise_zarr``: one block (on a worker, the model given by its file path, loaded once)."""
    return zarr_io.denoise_block(source, target, region, _frame_denoiser(method, _resolved(kwargs)))


def _denoise_volume_task(source, target, key: tuple, method: str, kwargs: dict) -> int:
    """A share of ``denoise_zarr`` with a model of volumes: one ZYX volume, streamed (``zarr_io.volume_io``)."""
    options = dict(_resolved(kwargs))
    model = options.pop("model")
    for unused in ("sigma", "seed", "data_range"):  # as ``denoise`` ignores them with a model of volumes
        options.pop(unused, None)
    read, write = zarr_io.volume_io(source, target, key)
    shape = zarr_io.volume_shape(source)
    model.denoise_streamed(read, shape, write, **options)
    return shape[0]


def _denoise_volumes_task(source, target, keys: tuple, method: str, kwargs: dict) -> int:
    """Volumes that share chunks, in turn, by one worker."""
    return sum(_denoise_volume_task(source, target, key, method, kwargs) for key in keys)


def denoise_files(inputs: list[str | os.PathLike], output: str | os.PathLike, method: str = "zero-shot", *,
                  scheduler=None, progress: bool = False, **kwargs) -> list[dict]:
    """``denoise_file`` over inputs paired with outputs by ``output_paths``; with ``scheduler``
    (``"local:4"``, ``"tcp://host:8786"`` or a ``distributed.Client``) one task per file on a Dask
    cluster, each worker loading the model from its file (a single Zarr input: one task per block).
    Returns one dict per input, in order: ``denoise_file``'s result, or {"input", "output", "error"} with
    the one-line message of a file that failed (the others are still written)."""
    pairs = output_paths(list(inputs), output)
    if scheduler is None or (len(pairs) == 1 and io.is_zarr(pairs[0][0])):
        extra = {} if scheduler is None else {"scheduler": scheduler}
        return [_file_task(src, dst, method, {**kwargs, **extra}, progress) for src, dst in pairs]
    portable = _portable(kwargs)
    with cluster.connect(scheduler) as client:
        return cluster.run_tasks(client, _file_task, [(str(s), str(d), method, portable) for s, d in pairs])


def _file_task(src, dst, method: str, kwargs: dict, progress: bool = False) -> dict:
    """``denoise_file`` with a bad input reported in the result instead of raised."""
    try:
        return denoise_file(src, dst, method, progress=progress, **_resolved(kwargs))
    except InputError as e:
        return {"input": str(src), "output": str(dst), "error": str(e)}


def _portable(kwargs: dict) -> dict:
    """Options to send to other processes: a trained model goes as its file path."""
    model = kwargs.get("model")
    if isinstance(model, TrainedModel):
        if not model.path:
            raise InputError("a model trained in this process has no file to send to a cluster; save it first")
        return {**kwargs, "model": model.path}
    return kwargs


def _resolved(kwargs: dict) -> dict:
    """``_portable``'s inverse on a worker: the model file loaded (once per process)."""
    model = kwargs.get("model")
    return {**kwargs, "model": _cached_model(model)} if isinstance(model, (str, os.PathLike)) else kwargs


_MODELS: dict[tuple[str, float], TrainedModel] = {}


def _cached_model(path: str | os.PathLike) -> TrainedModel:
    """``load_model(path)``, loaded once per process and file version."""
    file = zoo.resolve(path)[0]
    key = (str(file.absolute()), file.stat().st_mtime if file.is_file() else 0.0)
    if key not in _MODELS:
        _MODELS[key] = load_model(path)
    return _MODELS[key]


def denoise_report(output: str | os.PathLike) -> ComparePage:
    """The before/after page for a ``denoise`` run into ``output`` (read as ``output_paths`` does):
    ``OUTPUT/report.html`` for an output folder, ``<stem>.report.html`` next to a single output file. Its
    JPEG previews (long side at most 2048 px) go to ``report_files/`` (``<stem>.report_files/``)."""
    out = Path(output)
    single = out.suffix.lower() in io.IMAGE_SUFFIXES
    path = out.with_name(out.stem + ".report.html") if single else out / "report.html"
    return ComparePage(path, title="selfdenoise: noisy input / denoised output")


def _report_versions(src, img: np.ndarray, out: np.ndarray, info: io.ImageInfo, method: str, model):
    """The viewer of one denoised file: its name and (label, image) versions; a stack shows its middle slice."""
    name = Path(src).name
    if info.stack:
        k = len(img) // 2
        name, img, out = f"{name} (slice {k + 1} of {len(img)})", img[k], out[k]
    if model is not None:
        method = model.metadata["method"] if isinstance(model, TrainedModel) else Path(model).name
    return name, [("noisy input", img), (f"denoised ({method})", out)]


def run_sequence_method(seq, method: str = "self2self", *, seed: int = 0, progress: bool = False,
                        **options) -> tuple[np.ndarray, dict]:
    """Denoise one sequence and say how: ``(denoised float64 array, info)``. ``info`` holds the method,
    its options, ``seconds``, the input's gap counts and, for self2self, its fitting details."""
    arr = check_sequence(seq)
    known = registry.sequence_options(method)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"method '{method}' has no option {', '.join(unknown)} (its options: {', '.join(known)})")
    t0 = time.perf_counter()
    info = {"method": method, "options": dict(options), "gaps": gap_summary(arr)}
    entry = registry.SEQUENCE_METHODS[method]
    if "sequence" in entry.kinds:  # learned: built from its options, then fitted to this track
        try:
            learned = entry.target(**options)
        except TypeError as e:
            raise InputError(f"{method}: {e}") from None
        out, info[method] = learned.fit_denoise(arr, seed=seed, progress=progress)
    else:
        try:
            out = entry.target(arr, **options)
        except TypeError as e:
            raise InputError(f"{method}: {e}") from None
    info["seconds"] = time.perf_counter() - t0
    return out, info


def denoise_sequence(array, method: str = "self2self", *, seed: int = 0, progress: bool = False,
                     **options) -> np.ndarray:
    """Denoise a sequence shaped (frames, points, coords), e.g. face-landmark tracks; NaN = missing.

    ``method``: ``self2self`` (default; a 1-D network fitted to this track alone), ``savgol``,
    ``gaussian`` or ``one-euro``. ``options`` go to the method (e.g. ``steps=300`` for self2self,
    ``window=15, polyorder=3`` for savgol, ``min_cutoff=1.0, beta=10.0, fps=30`` for one-euro).
    Gaps are filled: the result has no NaN; float32 input stays float32, otherwise float64.
    """
    out, _ = run_sequence_method(array, method, seed=seed, progress=progress, **options)
    dtype = np.float32 if np.asarray(array).dtype == np.float32 else np.float64
    return out.astype(dtype)


def denoise_sequence_file(src: str | os.PathLike, dst: str | os.PathLike, method: str = "self2self", *,
                          seed: int = 0, progress: bool = False, **options) -> dict:
    """Read a sequence (.json / .csv / .npy, see ``selfdenoise.sequences.tracks``), denoise it and write ``dst``
    atomically in the same format. Returns {"input", "output", "seconds", "gaps", ...}."""
    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    if src.suffix.lower() != dst.suffix.lower():
        raise InputError(f"{dst}: write a sequence in its input's format ({src.suffix})")
    seq, info = read_sequence(src)
    out, details = run_sequence_method(seq, method, seed=seed, progress=progress, **options)
    io.ensure_parent(dst)
    write_sequence(dst, out, info)
    return {"input": str(src), "output": str(dst), "seconds": time.perf_counter() - t0, **details}


def sequence_jobs(inputs: list[str | os.PathLike], output: str | os.PathLike, method: str | None = None,
                  sequence: bool = False) -> list[tuple[Path, Path]] | None:
    """The (input, output) pairs when ``inputs`` are sequences, else None (they are images).

    Rule: ``.json`` and ``.csv`` files are sequences; a ``.npy`` file is a sequence when ``sequence`` is
    True or ``method`` exists only for sequences (savgol, gaussian, one-euro), otherwise an image.
    One input and an output with a suffix give that file; otherwise ``output`` is a folder."""
    files = [Path(p) for p in inputs]
    npy_as_sequence = sequence or (method in registry.SEQUENCE_METHODS and method not in registry.IMAGE_METHODS)
    flags = [is_sequence_file(f) or (npy_as_sequence and f.suffix.lower() == ".npy") for f in files]
    if not any(flags):
        return None
    if not all(flags):
        raise InputError(f"{files[flags.index(False)]}: cannot denoise images and sequences in one call")
    out = Path(output)
    if len(files) == 1 and out.suffix:
        return [(files[0], out)]
    if out.suffix:
        raise InputError(f"{out}: several inputs need an output folder, not a file name")
    return [(f, out / f.name) for f in files]


class TrainedModel:
    """A trained model loaded from its file: ``.denoise(image)``, ``.method``, ``.metadata``; ``.options``: the
    inference options it was loaded with (a zoo model's validated ones), under any given per call."""

    def __init__(self, method, network, metadata: dict, path: str = "", options: dict | None = None):
        self.method, self.network, self.metadata, self.path = method, network, metadata, path
        self.options = dict(options or {})

    @property
    def channels(self) -> int:
        return int(self.metadata["channels"])

    @property
    def volumetric(self) -> bool:
        """True for a model of volumes: it denoises (Z, H, W[, C]) arrays, not images."""
        return self.method.data_needs().ndim == 3

    def __repr__(self) -> str:
        return f"TrainedModel({self.metadata['method']}, {self.channels} channel(s), {self.path or 'in memory'})"

    def denoise(self, image, *, tile: int | None = None, tta: int | None = None, **options) -> np.ndarray:
        """Denoise one image (H, W) / (H, W, C), or one volume (Z, H, W) / (Z, H, W, C) for a model of volumes;
        float32 [0, 1] of the same shape. ``options`` change inference settings of the method for this call (e.g.
        ``r3=False``, ``blend=False`` for asym-mask)."""
        img, gray_2d = as_float_volume(image) if self.volumetric else as_float_image(image)
        method = self._inference(img.shape[-1], tile, tta, options)
        dev = next(self.network.parameters()).device
        x = torch.from_numpy(img).movedim(-1, 0)[None].contiguous().to(dev)  # (1, C, [Z,] H, W)
        y = method.denoise(self.network, x)[0].movedim(0, -1).float().cpu().numpy()
        out = np.clip(y, 0.0, 1.0)
        return out[..., 0] if gray_2d else out

    def denoise_streamed(self, read, shape: tuple[int, int, int, int], write, *, tile: int | None = None,
                         tta: int | None = None, **options) -> None:
        """``denoise`` of a volume of ``shape`` (Z, Y, X, C) that need not fit in memory, for a model of volumes:
        ``read(z, y, x)`` (slices) gives its voxels there as (n, h, w, C) float32 in [0, 1]; ``write(z, planes)``
        takes the result's planes (n, Y, X, C), clipped to [0, 1], in order. Equal to ``denoise`` of the volume."""
        if not self.volumetric:
            raise InputError(f"{self.path or 'model'}: a model of images denoises plane by plane, not streamed volumes")
        method = self._inference(shape[-1], tile, tta, options)
        dev = next(self.network.parameters()).device

        def read_region(region: tuple) -> torch.Tensor:  # (B, C, Z, Y, X) slices -> (1, C, n, h, w)
            return torch.from_numpy(np.ascontiguousarray(read(*region[2:]))).movedim(-1, 0)[None].to(dev)

        def emit(z0: int, z1: int, planes: torch.Tensor) -> None:
            write(slice(z0, z1), np.clip(planes[0].movedim(0, -1).float().cpu().numpy(), 0.0, 1.0))

        method.denoise_streamed(self.network, read_region, (1, shape[-1], *shape[:3]), emit)

    def _inference(self, channels: int, tile: int | None, tta: int | None, options: dict):
        """The method with this call's inference settings, after checking the input's channel count."""
        if channels != self.channels:
            kind = {1: "gray", 3: "RGB"}
            raise InputError(f"{self.path or 'model'}: trained on {kind.get(self.channels, self.channels)} images "
                             f"({self.channels} channel(s)); this image is {kind.get(channels, channels)} "
                             f"({channels} channel(s))")
        method = _configured(self.metadata, self.options, options) if options else self.method
        return dataclasses.replace(method, **({"tile": tile} if tile else {}), **({"tta": tta} if tta else {}))


def load_model(path: str | os.PathLike) -> TrainedModel:
    """Load a model file written by ``train`` (safetensors + JSON; never unpickles), or a shipped one named
    ``zoo:NAME`` (``selfdenoise models``) with the inference options it was validated with."""
    file, options = zoo.resolve(path)
    method, network, meta = _load_model(file)
    if "dataset" not in registry.kinds(meta["method"]):
        raise InputError(f"{path}: a '{meta['method']}' model is fitted per image, not reusable")
    if options:
        method = _configured(meta, options)
    return TrainedModel(method, network, meta, str(path), options)


def _configured(meta: dict, *options: dict):
    """A model file's method rebuilt from its saved config with inference ``options`` on top, later ones winning."""
    merged = {k: v for layer in options for k, v in layer.items()}
    return registry.get_method(meta["method"], **{**meta["config"], **merged})


#: Training options of ``train`` (``TrainConfig`` fields) that a preset may set.
TRAIN_KEYS = ("batch", "crop", "lr", "schedule", "warmup", "betas", "optimizer", "weight_decay", "clip", "ema")
#: What a bench run's ``-p METHOD.KEY=VALUE`` may set of a training: ``TRAIN_KEYS`` and the model to start from
TRAINING_SETTINGS = (*TRAIN_KEYS, "init")


def train(data, method: str = "ne2ne", output: str | os.PathLike | None = None, *, noise: str | None = None,
          val=None, val_noise: str | None = None, steps: int | None = None, minutes: float | None = None,
          preset: str = "fast", seed: int = 0, device: str = "auto", checkpoint: str | os.PathLike | None = None,
          checkpoint_every: int = 0, checkpoint_minutes: float = 5.0, resume: str | os.PathLike | None = None,
          log: str | os.PathLike | None = None, val_every: int = 0, progress: bool = False, on_step=None, clean=None,
          axes: str | None = None, init: str | os.PathLike | None = None, **options):
    """Train a dataset method (``n2n``, ``ne2ne``) on noisy data and save it to ``output``.

    ``data``: a folder (see ``selfdenoise.training.data``), a ``TrainingSet``, or a list of noisy arrays; for a
    method of volumes (``ne2ne-3d``) a TIFF/NPY volume or a folder of them, or a list of (Z, H, W[, C]) arrays.
    ``axes``: what the dimensions of TIFF/NPY files are (``"ZYX"``, ``"TZYX"``, ...; see ``io.read_image``).
    ``noise``: a synthetic spec drawn afresh on the fly (then ``data`` is the signal: the papers'
    protocol). ``val``: a folder of *clean* images noised with ``val_noise`` (default ``noise``) for
    validation PSNR. ``preset``: ``fast`` (CPU default) or ``paper`` (the paper's network and
    schedule). ``clean``: unpaired clean images of other scenes (a folder, or a list of arrays) for
    methods that also learn from them (``tcfl``). ``init``: a model file (or ``zoo:NAME``) of the same channels and
    network (of this method, or of another that builds its network by name: n2n, ne2ne, n2v) whose weights the training starts from (fine-tuning). ``options``: training settings (batch, crop, lr,
    schedule, warmup, optimizer, weight_decay, clip, betas, ema) or method options (net, widths, loss, gamma, ...).
    A checkpoint (``output``.checkpoint unless ``checkpoint`` is given) is written every
    ``checkpoint_minutes`` (and ``checkpoint_every`` steps), the one before it kept as ``.previous``; when one
    is there from an interrupted run and no ``resume`` is given, training continues from it (the same
    schedule: with ``steps`` the result equals an uninterrupted run).
    Returns the ``TrainResult`` (``.model`` is a ``TrainedModel``; ``.path`` the file written).
    """
    if "dataset" not in registry.kinds(method):
        raise InputError(f"method '{method}' is not trained on a data set (trainable: {', '.join(trainable_methods())})")
    cls = registry.method_class(method)
    if preset not in cls.presets:
        raise InputError(f"method '{method}' has no preset '{preset}' (choose from: {', '.join(cls.presets)})")
    fine_tuning = cls.fine_tuning if init is not None else {}
    recipe = {**cls.presets[preset], **fine_tuning, **{k: v for k, v in options.items() if v is not None}}
    train_opts = {k: recipe.pop(k) for k in list(recipe) if k in TRAIN_KEYS}
    m = registry.get_method(method, **recipe)
    cfg = TrainConfig(steps=steps, minutes=minutes, seed=seed, val_every=val_every,
                      checkpoint_every=checkpoint_every, checkpoint_minutes=checkpoint_minutes, **train_opts)
    cfg.check()
    needs = m.data_needs()
    ts = _training_set(data, noise, clean, needs, axes)
    val_pairs = _validation_pairs(val, val_noise or noise, seed, needs.ndim == 3) if val is not None else None
    if val_pairs and val_pairs[0][0].shape[1] != ts.channels:
        raise InputError(f"validation images have {val_pairs[0][0].shape[1]} channel(s), training data {ts.channels}")
    if output is not None:
        io.ensure_parent(output)
        if checkpoint is None:
            checkpoint = Path(str(output) + ".checkpoint")
    if resume is None and checkpoint is not None:
        resume = interrupted_run(checkpoint)
    start = _initial_weights(init, m, ts.channels) if init is not None and resume is None else None  # resumed: its own
    t0 = time.perf_counter()
    result = _train(m, ts, cfg, val=val_pairs, checkpoint=checkpoint, resume=resume, log=log, device=device,
                    progress=progress, on_step=on_step, init=start)
    meta_train = {"steps": result.steps, "seconds": round(result.seconds, 1), "preset": preset,
                  **({"init": str(init)} if init is not None else {}),
                  "config": {k: v for k, v in cfg.__dict__.items()}, "val_psnr": result.val_psnr,
                  "gflops_per_s": result.gflops_per_s, "wall_seconds": round(time.perf_counter() - t0, 1),
                  "device": str(next(result.model.parameters()).device),
                  **({"stopped": result.stopped} if result.stopped else {})}
    result.path, result.data = None, ts.summary()
    extra = {"noise": ts.noise.spec if ts.noise else "in the data", "data": result.data, "train": meta_train}
    if output is not None and is_rank0():
        result.path = str(save_model(output, result.model, method=m.name, channels=ts.channels, config=m.config(),
                                     extra=extra))
        for done in (Path(checkpoint), Path(previous_checkpoint(checkpoint))) if checkpoint is not None else ():
            done.unlink(missing_ok=True)  # finished: the model file supersedes them
    end_process_group()
    result.model = TrainedModel(m, result.model.eval(), {"channels": ts.channels, "method": m.name,
                                                         "config": m.config(), "extra": extra}, result.path or "")
    return result


def _starts_from_weights(method: str) -> bool:
    """Whether ``method`` can fit one image starting from a model's weights (``denoise(init=)``): the methods trained on
    a data set that also fit one image, from a model of their own; zero-shot, from any model of its network."""
    kinds = set(registry.kinds(method))
    return "single-image" in kinds and ("dataset" in kinds or hasattr(registry.method_class(method), "prior_from_weights"))


def _same_network(start, method) -> bool:
    """Whether a model of method ``start`` has the network ``method`` trains: the same method, or two methods that
    build their network by name (``NamedNetMethod``: n2n, ne2ne, n2v, ...) with the same name and widths, so that a
    zoo model trained by one loss can be fine-tuned by another on single noisy images."""
    if start.name == method.name:
        return True
    return (isinstance(start, NamedNetMethod) and isinstance(method, NamedNetMethod)
            and (start.net, start.widths) == (method.net, method.widths))


def _initial_weights(init: str | os.PathLike, method, channels: int) -> dict:
    """The network weights of the model ``init`` (loaded once per process) to start training or fitting ``method``
    on ``channels``-channel data from; an ``InputError`` naming it unless it is a model of that method (or of one
    sharing its named network, ``_same_network``), those channels and that network (a method fitting single images
    only: any model its ``prior_from_weights`` takes)."""
    start = _cached_model(init)
    if "dataset" not in registry.kinds(method.name):  # a prior of the method's network (zero-shot)
        try:
            method.prior_from_weights(start.network.state_dict())
        except InputError as e:
            raise InputError(f"{init}: {e}") from None
        return start.network.state_dict()
    if not _same_network(start.method, method) or start.channels != channels:
        raise InputError(f"{init}: a {start.channels}-channel '{start.method.name}' model cannot start "
                         f"'{method.name}' on {channels}-channel data")
    weights = start.network.state_dict()
    fresh = method.build_model(channels).state_dict()
    if {k: tuple(v.shape) for k, v in weights.items()} != {k: tuple(v.shape) for k, v in fresh.items()}:
        raise InputError(f"{init}: its network differs from the one these options build (saved options: "
                         f"{start.metadata.get('config')}); give the same network options")
    return weights


def interrupted_run(checkpoint: str | os.PathLike) -> Path | None:
    """The checkpoint an interrupted run left at ``checkpoint`` (or the one before it when that one cannot
    be read), announced with a warning; None when there is none."""
    for path in (Path(checkpoint), Path(previous_checkpoint(checkpoint))):
        if not path.is_file():
            continue
        try:
            step = read_checkpoint(path)["step"]
        except InputError as e:
            warnings.warn(f"{e}; trying the one before it", stacklevel=2)
            continue
        warnings.warn(f"{path}: continuing the interrupted run from step {step} (delete the file to start over)",
                      stacklevel=2)
        return path
    return None


def trainable_methods() -> list[str]:
    return registry.names("dataset")


def _training_set(data, noise: str | None, clean, needs: DataNeeds, axes: str | None = None) -> TrainingSet:
    """``data`` as a training set (a folder, a ``TrainingSet`` or a list of noisy arrays; volumes for a method of
    volumes), its repeated frames aligned when the method asks for it, plus the unpaired clean domain when given."""
    volumes = needs.ndim == 3
    if isinstance(data, TrainingSet):
        ts = data
    elif isinstance(data, (str, os.PathLike)):
        ts = load_volumes(data, noise, axes) if volumes else load_folder(data, noise, axes)
    else:
        ts = (from_volumes if volumes else from_arrays)(list(data), noise=noise)
    if needs.register:
        ts = ts.registered()
    if clean is not None:
        if isinstance(clean, (str, os.PathLike)):
            ts = ts.with_clean(*load_clean_folder(clean))
        else:
            ts = ts.with_clean([as_float_image(a, f"clean image {i}")[0] for i, a in enumerate(clean)])
    return ts


def _validation_pairs(val, spec: str | None, seed: int, volumes: bool = False, limit: int = 8, size: int = 256):
    """Up to ``limit`` clean validation images (centre crops of at most ``size``), noised once with a
    fixed seed: [(noisy, clean)] as (1, C, H, W) tensors; with ``volumes``, the first volume of each file
    (``io.as_volumes``, every plane cropped alike) as (1, C, Z, H, W)."""
    if spec is None:
        raise InputError("validation needs a noise spec (--noise or --val-noise) to make noisy inputs from clean images")
    files = io.list_images(val)[:limit]
    pairs = []
    for i, f in enumerate(files):
        img, info = io.read_image(f)
        img = io.as_volumes(img, info, f)[0] if volumes else img[0] if img.ndim == 4 else img
        h, w = img.shape[-3:-1]
        top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
        clean = img[..., top:top + size, left:left + size, :]
        noisy = _add_noise(clean.reshape(-1, *clean.shape[-2:]), spec, seed=10_000 + seed + i).reshape(clean.shape)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 0)))[None].float()
        pairs.append((t(noisy), t(clean)))
    return pairs
