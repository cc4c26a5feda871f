"""Export a saved model to ONNX, TorchScript or a bioimage.io package for use without selfdenoise.

The graph is the network's forward pass: (N, C, H, W) float32 in [0, 1] -> same shape (no test-time
augmentation, no tiling); N, H and W are dynamic. A model of volumes (``ne2ne-3d``) takes (N, C, D, H, W), D
dynamic too. The networks pad H and W to a multiple of 16/32
behind Python ``if``s on the size, which both the tracer and ``torch.export`` freeze at the example
size (the dynamo ONNX exporter even narrows H, W to multiples of 16 without a word). So the exported
graph is a wrapper that pads with index arithmetic first (the network's own padding is then a no-op)
and crops afterwards. Both formats go through the TorchScript tracer (``torch.onnx.export(dynamo=False)``,
``torch.jit.trace``): with the wrapper it is as exact as ``dynamo=True``, ~10x faster and needs no
onnxscript. Every export is compared with PyTorch at two odd sizes before it is kept.

A bioimage.io package (``fmt="bioimageio"``, the ``bioimageio`` extra) holds those same TorchScript (and,
with the ``onnx`` extra, ONNX) weights, a model description (RDF 0.5) and a seeded synthetic test image
with the network's output; it is kept only when ``bioimageio.core.test_model`` passes on it.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from . import zoo
from .core.errors import InputError, MissingDependencyError
from .core.io import atomic_write, write_image
from .methods import registry
from .modelfile import load_model

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "bioimageio": ".bioimageio.zip"}
EXAMPLE_SIZE = (40, 56)
CHECK_SIZES = ((1, 37, 45), (2, 5, 51))  # (N, H, W): odd, not the example; 5 rows are too few to reflect
#: the same for a model of volumes: (D, H, W) and (N, D, H, W)
EXAMPLE_SIZE_3D = (4, 40, 56)
CHECK_SIZES_3D = ((1, 3, 37, 45), (2, 1, 5, 51))
TOLERANCE = 1e-4


def _pad_index(n: Tensor | int, pad: Tensor | int) -> tuple[Tensor, Tensor]:
    """Indices that pad ``n`` rows by ``pad`` at the end: (reflect, may be negative; replicate)."""
    i = torch.arange(n + pad)
    return torch.where(i < n, i, 2 * (n - 1) - i), i.clamp(max=n - 1)


class PadCrop(nn.Module):
    """``net`` on the input padded to a multiple of ``multiple`` (reflect, or replicate where a side is
    too short: per side, or for both sides when ``joint``), cropped back. Shape-agnostic when traced."""

    def __init__(self, net: nn.Module, multiple: int, joint: bool = False):
        super().__init__()
        self.net, self.multiple, self.joint = net, int(multiple), joint

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2], x.shape[-1]
        if self.multiple <= 1:
            return self.net(x)
        rh, ch = _pad_index(h, (-h) % self.multiple)
        rw, cw = _pad_index(w, (-w) % self.multiple)
        ok_h, ok_w = rh.min() >= 0, rw.min() >= 0
        if self.joint:
            ok_h = ok_w = ok_h & ok_w
        rows, cols = x.dim() - 2, x.dim() - 1  # (N, C, H, W), or (N, C, D, H, W) for a network of volumes
        xp = x.index_select(rows, torch.where(ok_h, rh, ch)).index_select(cols, torch.where(ok_w, rw, cw))
        return self.net(xp)[..., :h, :w]


def _exportable(model: nn.Module, channels: int, volumes: bool = False) -> nn.Module:
    """Wrap ``model`` in the ``PadCrop`` whose padding rule reproduces the model's own."""
    multiple = max(int(getattr(layer, "multiple", 1)) for layer in model.modules())  # nets and the blocks they wrap
    depth = (3,) if volumes else ()
    x = torch.rand(1, channels, *depth, 5, 3 * multiple + 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x)
        for joint in (False, True):
            wrapped = PadCrop(model, multiple, joint).eval()
            if multiple <= 1 or torch.allclose(wrapped(x), ref, atol=1e-6):
                return wrapped
    raise InputError(f"cannot export {type(model).__name__}: its padding rule is not one the exporter knows")


def _check(run, model: nn.Module, channels: int, volumes: bool = False) -> tuple[float, list[list[int]]]:
    """Max abs difference between ``run`` (numpy in, numpy out) and ``model`` at ``CHECK_SIZES`` (or
    ``CHECK_SIZES_3D`` for a model of ``volumes``)."""
    g = torch.Generator().manual_seed(0)
    diff, sizes = 0.0, []
    for n, *spatial in CHECK_SIZES_3D if volumes else CHECK_SIZES:
        x = torch.rand(n, channels, *spatial, generator=g)
        with torch.no_grad():
            ref = model(x).numpy()
        try:
            out = run(x.numpy())
        except Exception as e:
            first = (str(e).strip().splitlines() or [""])[0][:160]
            raise InputError(f"exported model fails on input {tuple(x.shape)} ({type(e).__name__}: {first})") from None
        if out.shape != ref.shape:
            raise InputError(f"exported model gives shape {out.shape} for input {tuple(x.shape)}, expected {ref.shape}")
        diff = max(diff, float(abs(out - ref).max()))
        sizes.append([n, channels, *spatial])
    if not diff <= TOLERANCE:
        raise InputError(f"exported model differs from PyTorch by {diff:.3g} (> {TOLERANCE:g}); nothing written")
    return diff, sizes


def _load_exportable(model_path: Path):
    """``load_model`` (float32, eval), refusing a method whose inference is not one pass of its network;
    and whether it is a model of volumes."""
    method, model, meta = load_model(model_path)
    if not method.exportable:
        raise InputError(f"{model_path}: a '{meta['method']}' network is not a denoiser on its own (its inference "
                         "rule runs it several times on masked inputs); it cannot be exported")
    volumes = "dataset" in registry.kinds(meta["method"]) and method.data_needs().ndim == 3
    return method, model.float().eval(), meta, volumes


def export_model(model_path: str | os.PathLike, out_path: str | os.PathLike | None = None, fmt: str = "onnx", *,
                 check: bool = True, opset: int | None = None) -> dict:
    """Export a model file to ``fmt`` ("onnx", "torchscript" or "bioimageio"), atomically, checked against
    PyTorch (and a bioimage.io package by ``bioimageio.core.test_model``).

    Returns ``{"path", "format", "max_abs_diff", "checked_sizes", "seconds"}`` (no check: None, []); for
    "bioimageio" also ``"weights"`` (the formats inside) and ``"test"`` (bioimageio.core's status; no check: None).
    """
    t0 = time.perf_counter()
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r} (choose from: {', '.join(FORMATS)})")
    if fmt == "onnx":
        try:
            import onnx
        except ImportError:
            raise MissingDependencyError("ONNX export needs the onnx package: pip install 'selfdenoise[onnx]'") from None
    bmz = _bioimageio() if fmt == "bioimageio" else None
    if out_path is None and zoo.is_zoo_name(model_path):  # not next to the package's own file
        raise InputError(f"{model_path}: give an output path (-o) for a zoo model's export")
    model_path = zoo.resolve(model_path)[0]
    out = Path(out_path) if out_path is not None else model_path.with_suffix(FORMATS[fmt])
    if out.resolve() == model_path.resolve():
        raise InputError(f"{out}: the export would overwrite the model file; give another output path")
    if bmz is not None:
        return _bioimageio_package(bmz, model_path, out, check, opset, t0)
    _, model, meta, volumes = _load_exportable(model_path)
    channels = meta["channels"]
    wrapped = _exportable(model, channels, volumes)
    example = torch.rand(1, channels, *(EXAMPLE_SIZE_3D if volumes else EXAMPLE_SIZE))
    result = {"max_abs_diff": None, "checked_sizes": []}

    def write(tmp: str) -> None:
        try:
            with torch.no_grad():
                if fmt == "onnx":
                    axes = {0: "batch", 2: "depth", 3: "height", 4: "width"} if volumes else \
                        {0: "batch", 2: "height", 3: "width"}
                    torch.onnx.export(wrapped, (example,), tmp, input_names=["noisy"], output_names=["denoised"],
                                      dynamic_axes={"noisy": axes, "denoised": axes}, opset_version=opset,
                                      dynamo=False)
                else:
                    traced = torch.jit.trace(wrapped, example, check_trace=False)
        except Exception as e:
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise InputError(f"{model_path}: {fmt} export failed ({type(e).__name__}: {first})") from None
        info = {"method": meta["method"], "channels": str(channels), "version": meta.get("version", ""),
                "config": json.dumps(meta["config"], sort_keys=True),
                "extra": json.dumps(meta["extra"], sort_keys=True)}
        if fmt == "onnx":
            proto = onnx.load(tmp)
            for k, v in info.items():
                proto.metadata_props.add(key=f"selfdenoise.{k}", value=v)
            onnx.save(proto, tmp)
            if check:
                try:
                    import onnxruntime as ort
                except ImportError:
                    return
                opts = ort.SessionOptions()
                opts.log_severity_level = 4  # a failing run is reported as an InputError, not logged too
                sess = ort.InferenceSession(tmp, opts, providers=["CPUExecutionProvider"])
                run = lambda a: sess.run(None, {"noisy": a})[0]  # noqa: E731
                result["max_abs_diff"], result["checked_sizes"] = _check(run, model, channels, volumes)
        else:
            torch.jit.save(traced, tmp, _extra_files={"selfdenoise.json": json.dumps(info, sort_keys=True)})
            if check:
                loaded = torch.jit.load(tmp)
                run = lambda a: loaded(torch.from_numpy(a)).detach().numpy()  # noqa: E731
                with torch.no_grad():
                    result["max_abs_diff"], result["checked_sizes"] = _check(run, model, channels, volumes)

    with warnings.catch_warnings():
        # TracerWarning on the network's (no-op) padding branch; DeprecationWarning on the TorchScript
        # exporter, torch.jit.save and torch.jit.load (see the module docstring for why they are used)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        atomic_write(out, write)
    return {"path": str(out), "format": fmt, **result, "seconds": round(time.perf_counter() - t0, 3)}


# ------------------------------------------------------------------------------------- bioimage.io
# The package declares y and x as min 16 + n * 1: the traced wrapper pads to the network's multiple itself,
# so every size is valid and a consumer's output equals selfdenoise's (no padding of the consumer's own).
# No field holds a URL (the papers are cited by DOI), so bioimageio.spec's I/O checks, which test_model
# forces on, make no network request: export and test run offline with the default settings.

#: the paper of each exportable method: (citation, DOI: the arXiv preprint's, or the journal's for TCFL)
PAPERS = {
    "n2n": ("Lehtinen et al., Noise2Noise: Learning Image Restoration without Clean Data, ICML 2018",
            "10.48550/arXiv.1803.04189"),
    "ne2ne": ("Huang et al., Neighbor2Neighbor: Self-Supervised Denoising from Single Noisy Images, CVPR 2021",
              "10.48550/arXiv.2101.02824"),
    "n2v": ("Krull, Buchholz and Jug, Noise2Void - Learning Denoising from Single Noisy Images, CVPR 2019",
            "10.48550/arXiv.1811.10980"),
    "n2v2": ("Hoeck et al., N2V2 - Fixing Noise2Void Checkerboard Artifacts with Modified Sampling Strategies "
             "and a Tweaked Network Architecture, ECCV 2022 workshops", "10.48550/arXiv.2211.08512"),
    "struct-n2v": ("Broaddus, Krull, Weigert, Schmidt and Myers, Removing Structured Noise with "
                   "Self-Supervised Blind-Spot Networks, ISBI 2020", "10.48550/arXiv.1910.05876"),
    "tcfl": ("Geng et al., Triplet Cross-Fusion Learning for Unpaired Image Denoising in Optical Coherence "
             "Tomography, IEEE TMI 2022", "10.1109/TMI.2022.3184529"),
}
PAPERS["zero-shot"] = PAPERS["ne2ne-3d"] = PAPERS["ne2ne"]  # its adaptation loss; the same method on volumes
#: the smallest side the package declares (any size from there on: the wrapper pads to the network's multiple)
BIOIMAGEIO_MIN_SIZE = 16
#: planes of the test volume packaged with a model of volumes
VOLUME_SAMPLE_DEPTH = 12


def _bioimageio():
    """The bioimage.io modules: (``bioimageio.spec.model.v0_5``, ``save_bioimageio_package``, ``test_model``)."""
    try:
        from bioimageio.core import test_model
        from bioimageio.spec import save_bioimageio_package
        from bioimageio.spec.model import v0_5
    except ImportError:
        raise MissingDependencyError("bioimage.io export needs bioimageio.core: "
                                     "pip install 'selfdenoise[bioimageio]'") from None
    return v0_5, save_bioimageio_package, test_model


def sample_image(channels: int, size: int = 64, seed: int = 0, depth: int | None = None) -> np.ndarray:
    """A seeded synthetic noisy image (1, C, size, size) float32 in [0, 1]: a gradient (along x, or y in the
    second channel), concentric rings and Gaussian noise of sigma 0.1; with ``depth``, a volume (1, C, depth,
    size, size) of concentric shells instead of rings."""
    zz, yy, xx = np.mgrid[0:depth or 1, 0:size, 0:size] / np.array([max((depth or 1) - 1, 1), size - 1, size - 1])[
        :, None, None, None]
    radius = np.hypot(yy - 0.5, xx - 0.5) if depth is None else np.sqrt((zz - 0.5) ** 2 + (yy - 0.5) ** 2 + (xx - 0.5) ** 2)
    rings = (radius * 8) % 1 > 0.5
    clean = np.stack([0.15 + 0.4 * (yy if c == 1 else xx) + 0.3 * rings for c in range(channels)])
    noisy = clean + np.random.default_rng(seed).normal(0.0, 0.1, clean.shape)
    noisy = noisy if depth is not None else noisy[:, 0]
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)[None]


def _bioimageio_weights(bmz, model_path: Path, folder: Path, check: bool, opset: int | None):
    """TorchScript (and, with onnx installed, ONNX) exports in ``folder``: (weights description, checks)."""
    ts = export_model(model_path, folder / "weights.pt", "torchscript", check=check)
    entries = {"torchscript": bmz.TorchscriptWeightsDescr(
        source=folder / "weights.pt", pytorch_version=bmz.Version(torch.__version__.split("+")[0]),
        comment="traced selfdenoise.export.PadCrop wrapper: pads to the network's multiple, crops back")}
    checks = [ts]
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        checks.append(export_model(model_path, folder / "weights.onnx", "onnx", check=check, opset=opset))
        version = max(o.version for o in onnx.load(folder / "weights.onnx").opset_import if o.domain in ("", "ai.onnx"))
        entries["onnx"] = bmz.OnnxWeightsDescr(source=folder / "weights.onnx", opset_version=version,
                                               parent="torchscript", comment="the same traced graph, as ONNX")
    return bmz.WeightsDescr(**entries), checks


def _write_cover(path: Path, noisy: np.ndarray, denoised: np.ndarray) -> None:
    """Noisy | denoised side by side (2:1), enlarged 2x: (C, H, W) arrays in [0, 1] (of (C, D, H, W) volumes,
    the middle plane)."""
    if noisy.ndim == 4:
        noisy, denoised = noisy[:, len(noisy[0]) // 2], denoised[:, len(denoised[0]) // 2]
    pair = np.concatenate([noisy, denoised], axis=-1).transpose(1, 2, 0).repeat(2, 0).repeat(2, 1)
    write_image(path, np.clip(pair[..., 0] if len(pair[0, 0]) == 1 else pair, 0.0, 1.0))


_README = """\
# selfdenoise {method} denoiser

A denoiser trained by selfdenoise {version} with the method `{method}`{paper} on noisy data alone:
{channels} channel(s), {parameters:,} parameters.

## Configuration

The method's options as saved in the model file (`selfdenoise train --method {method} -p KEY=VALUE` sets them):

{config}

## Training

{command}Noise: {noise}.

Data, as recorded in the model file:

{data}

Schedule and result:

{train}

The weights are learned from the data above: that data may come with its own license or terms of use,
which the BSD-3-Clause license of this package does not replace; check them before reusing the weights.

## Inputs and outputs

One tensor ({axes}), float32 in [0, 1], with y and x of any size from {min_size}{depth_note}. The graph pads
y and x to a multiple of {multiple} by reflection (replication where a side is too short) and crops the result
back; the output, clipped to [0, 1], has the input's shape. It is one pass of the network: the test-time
flips, tiling or Wiener refinement that `selfdenoise denoise` can add are not part of it.

## Validation

`test_input.npy` is a seeded synthetic {sample} (gradient, {rings}, Gaussian noise of sigma 0.1) and
`test_output.npy` the PyTorch network's output on it, which `bioimageio.core.test_model` reproduces from the
packaged weights.{checked} The validation PSNR of training, where a validation set was given, is in the
schedule above; measure the denoiser on held-out noisy/clean pairs of your own data before relying on it.

## License

BSD-3-Clause (selfdenoise's license); see the note on the training data above.
"""


def _json_block(value) -> str:
    if not value:
        return "(not recorded in the model file)"
    return "```json\n" + json.dumps(value, indent=2, sort_keys=True, default=str) + "\n```"


def _documentation(meta: dict, multiple: int, checks: list[dict], volumes: bool = False) -> str:
    """The package's README.md: method, configuration, training, data, inputs and outputs, validation."""
    extra, paper = meta["extra"], PAPERS.get(meta["method"])
    diffs = [c["max_abs_diff"] for c in checks if c["max_abs_diff"] is not None]
    sizes = ", ".join("x".join(map(str, s)) for s in checks[0]["checked_sizes"])
    return _README.format(
        method=meta["method"], version=meta.get("version", ""), channels=meta["channels"],
        parameters=meta["parameters"], paper=f" ({paper[0]}, doi:{paper[1]})" if paper else "",
        config=_json_block(meta["config"]), noise=extra.get("noise", "not recorded"),
        command=f"Command:\n\n```\n{extra['command']}\n```\n\n" if extra.get("command") else "",
        data=_json_block(extra.get("data")), train=_json_block(extra.get("train")), min_size=BIOIMAGEIO_MIN_SIZE,
        multiple=multiple, axes="batch, channel, z, y, x" if volumes else "batch, channel, y, x",
        depth_note=" and z of any size from 1 (the network pools in-plane only)" if volumes else "",
        sample=f"{VOLUME_SAMPLE_DEPTH}x64x64 volume" if volumes else "64x64 image",
        rings="concentric shells" if volumes else "rings", checked=f" Each weights file was also compared with PyTorch on inputs of shape {sizes} "
        f"(max abs difference {max(diffs):.1e})." if diffs else "")


def _model_description(bmz, folder: Path, meta: dict, weights, volumes: bool = False):
    """The RDF (format 0.5) of the files in ``folder``."""
    channels, method = meta["channels"], meta["method"]
    spatial = "zyx" if volumes else "yx"
    names = {1: ["gray"], 3: ["red", "green", "blue"]}.get(channels, [f"c{i}" for i in range(channels)])
    data = bmz.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0))
    size = bmz.ParameterizedSize(min=BIOIMAGEIO_MIN_SIZE, step=1)
    inp, outp = bmz.TensorId("noisy"), bmz.TensorId("denoised")

    def space_out(axis: str):  # as large as the input's
        return bmz.SpaceOutputAxis(id=bmz.AxisId(axis), size=bmz.SizeReference(tensor_id=inp, axis_id=bmz.AxisId(axis)))

    paper = PAPERS.get(method)
    return bmz.ModelDescr(
        name=f"selfdenoise {method} denoiser ({channels} channel{'s' * (channels > 1)})",
        description=f"Self-supervised {'volume' if volumes else 'image'} denoiser ({method}) trained by selfdenoise "
                    f"on noisy data alone; {'3-D float32 volumes' if volumes else '2-D float32 images'} in [0, 1], "
                    "any size.",
        authors=[bmz.Author(name="selfdenoise")],
        cite=[bmz.CiteEntry(text=paper[0], doi=bmz.Doi(paper[1]))] if paper else [],
        license=bmz.LicenseId("BSD-3-Clause"),
        tags=["denoising", "self-supervised", "3d" if volumes else "2d", "pytorch", "selfdenoise", method],
        documentation=bmz.FileDescr(source=folder / "README.md"),
        covers=[bmz.FileDescr(source=folder / "cover.png")],
        inputs=[bmz.InputTensorDescr(
            id=inp, description="noisy image, float32 in [0, 1]", data=data,
            axes=[bmz.BatchAxis(), bmz.ChannelAxis(channel_names=names),
                  *[bmz.SpaceInputAxis(id=bmz.AxisId(a), size=bmz.ParameterizedSize(min=1, step=1) if a == "z" else size)
                    for a in spatial]],
            test_tensor=bmz.FileDescr(source=folder / "test_input.npy"),
            sample_tensor=bmz.FileDescr(source=folder / "sample_input.tif"))],
        outputs=[bmz.OutputTensorDescr(
            id=outp, description="denoised image, clipped to [0, 1]", data=data,
            axes=[bmz.BatchAxis(), bmz.ChannelAxis(channel_names=names), *[space_out(a) for a in spatial]],
            test_tensor=bmz.FileDescr(source=folder / "test_output.npy"),
            sample_tensor=bmz.FileDescr(source=folder / "sample_output.tif"),
            postprocessing=[bmz.ClipDescr(kwargs=bmz.ClipKwargs(min=0.0, max=1.0))])],
        weights=weights,
        config=bmz.Config(
            bioimageio=bmz.BioimageioConfig(task="denoising", model_parameter_count=meta["parameters"]),
            selfdenoise={k: meta.get(k) for k in ("method", "channels", "version", "config", "extra")}),
    )


def _bioimageio_package(bmz, model_path: Path, out: Path, check: bool, opset: int | None, t0: float) -> dict:
    """Write the bioimage.io package of ``model_path`` to ``out``: see ``export_model``."""
    import tifffile

    v0_5, save_package, test_model = bmz
    _, model, meta, volumes = _load_exportable(model_path)
    status = None
    with tempfile.TemporaryDirectory(prefix="selfdenoise-bioimageio-") as tmp:
        folder = Path(tmp)
        weights, checks = _bioimageio_weights(v0_5, model_path, folder, check, opset)
        wrapped = _exportable(model, meta["channels"], volumes)
        x = sample_image(meta["channels"], depth=VOLUME_SAMPLE_DEPTH if volumes else None)
        with torch.no_grad():
            y = wrapped(torch.from_numpy(x)).clamp(0.0, 1.0).numpy()
        for name, a in (("input", x), ("output", y)):
            np.save(folder / f"test_{name}.npy", a)
            tifffile.imwrite(folder / f"sample_{name}.tif", a)  # the same tensors, in a format imageio reads
        _write_cover(folder / "cover.png", x[0], y[0])
        (folder / "README.md").write_text(_documentation(meta, wrapped.multiple, checks, volumes), encoding="utf-8")
        descr = _model_description(v0_5, folder, meta, weights, volumes)

        def write(part: str) -> None:
            nonlocal status
            save_package(descr, output_path=Path(part))
            if check:
                summary = test_model(Path(part))
                status = summary.status
                if status != "passed":
                    failed = [d for d in summary.details if d.status == "failed"]
                    why = (failed[0].errors[0].msg if failed and failed[0].errors else str(status)).strip()
                    raise InputError(f"{out}: bioimageio.core's test of the package failed "
                                     f"({(why.splitlines() or [''])[0][:200]}); nothing written")

        atomic_write(out, write)
    diffs = [c["max_abs_diff"] for c in checks if c["max_abs_diff"] is not None]
    return {"path": str(out), "format": "bioimageio", "max_abs_diff": max(diffs) if diffs else None,
            "checked_sizes": checks[0]["checked_sizes"], "weights": [c["format"] for c in checks], "test": status,
            "seconds": round(time.perf_counter() - t0, 3)}
