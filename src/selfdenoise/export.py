"""Export a saved model to ONNX or TorchScript for use without selfdenoise.

The graph is the network's forward pass: (N, C, H, W) float32 in [0, 1] -> same shape (no test-time
augmentation, no tiling); N, H and W are dynamic. The networks pad H and W to a multiple of 16/32
behind Python ``if``s on the size, which both the tracer and ``torch.export`` freeze at the example
size (the dynamo ONNX exporter even narrows H, W to multiples of 16 without a word). So the exported
graph is a wrapper that pads with index arithmetic first (the network's own padding is then a no-op)
and crops afterwards. Both formats go through the TorchScript tracer (``torch.onnx.export(dynamo=False)``,
``torch.jit.trace``): with the wrapper it is as exact as ``dynamo=True``, ~10x faster and needs no
onnxscript. Every export is compared with PyTorch at two odd sizes before it is kept.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from .core.errors import InputError, MissingDependencyError
from .core.io import atomic_write
from .modelfile import load_model

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
EXAMPLE_SIZE = (40, 56)
CHECK_SIZES = ((1, 37, 45), (2, 5, 51))  # (N, H, W): odd, not the example; 5 rows are too few to reflect
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
        xp = x.index_select(2, torch.where(ok_h, rh, ch)).index_select(3, torch.where(ok_w, rw, cw))
        return self.net(xp)[..., :h, :w]


def _exportable(model: nn.Module, channels: int) -> nn.Module:
    """Wrap ``model`` in the ``PadCrop`` whose padding rule reproduces the model's own."""
    multiple = max(int(getattr(layer, "multiple", 1)) for layer in model.modules())  # nets and the blocks they wrap
    x = torch.rand(1, channels, 5, 3 * multiple + 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x)
        for joint in (False, True):
            wrapped = PadCrop(model, multiple, joint).eval()
            if multiple <= 1 or torch.allclose(wrapped(x), ref, atol=1e-6):
                return wrapped
    raise InputError(f"cannot export {type(model).__name__}: its padding rule is not one the exporter knows")


def _check(run, model: nn.Module, channels: int) -> tuple[float, list[list[int]]]:
    """Max abs difference between ``run`` (numpy in, numpy out) and ``model`` at ``CHECK_SIZES``."""
    g = torch.Generator().manual_seed(0)
    diff, sizes = 0.0, []
    for n, h, w in CHECK_SIZES:
        x = torch.rand(n, channels, h, w, generator=g)
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
        sizes.append([n, channels, h, w])
    if not diff <= TOLERANCE:
        raise InputError(f"exported model differs from PyTorch by {diff:.3g} (> {TOLERANCE:g}); nothing written")
    return diff, sizes


def export_model(model_path: str | os.PathLike, out_path: str | os.PathLike | None = None, fmt: str = "onnx", *,
                 check: bool = True, opset: int | None = None) -> dict:
    """Export a model file to ``fmt`` ("onnx" or "torchscript"), atomically, checked against PyTorch.

    Returns ``{"path", "format", "max_abs_diff", "checked_sizes", "seconds"}`` (no check: None, []).
    """
    t0 = time.perf_counter()
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r} (choose from: {', '.join(FORMATS)})")
    if fmt == "onnx":
        try:
            import onnx
        except ImportError:
            raise MissingDependencyError("ONNX export needs the onnx package: pip install 'selfdenoise[onnx]'") from None
    model_path = Path(model_path)
    out = Path(out_path) if out_path is not None else model_path.with_suffix(FORMATS[fmt])
    if out.resolve() == model_path.resolve():
        raise InputError(f"{out}: the export would overwrite the model file; give another output path")
    method, model, meta = load_model(model_path)
    if not method.exportable:
        raise InputError(f"{model_path}: a '{meta['method']}' network is not a denoiser on its own (its inference "
                         "rule runs it several times on masked inputs); it cannot be exported")
    model = model.float().eval()
    channels = meta["channels"]
    wrapped = _exportable(model, channels)
    example = torch.rand(1, channels, *EXAMPLE_SIZE)
    result = {"max_abs_diff": None, "checked_sizes": []}

    def write(tmp: str) -> None:
        try:
            with torch.no_grad():
                if fmt == "onnx":
                    axes = {0: "batch", 2: "height", 3: "width"}
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
                result["max_abs_diff"], result["checked_sizes"] = _check(run, model, channels)
        else:
            torch.jit.save(traced, tmp, _extra_files={"selfdenoise.json": json.dumps(info, sort_keys=True)})
            if check:
                loaded = torch.jit.load(tmp)
                run = lambda a: loaded(torch.from_numpy(a)).detach().numpy()  # noqa: E731
                with torch.no_grad():
                    result["max_abs_diff"], result["checked_sizes"] = _check(run, model, channels)

    with warnings.catch_warnings():
        # TracerWarning on the network's (no-op) padding branch; DeprecationWarning on the TorchScript
        # exporter, torch.jit.save and torch.jit.load (see the module docstring for why they are used)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        atomic_write(out, write)
    return {"path": str(out), "format": fmt, **result, "seconds": round(time.perf_counter() - t0, 3)}
