"""Benchmark protocols of ``benchmarks.md`` as data, a runner and a folder-vs-folder evaluator.

``run_protocol`` reads each test image once, synthesises its noise once (seed = protocol seed base +
run seed + image index, so every method sees the same noisy input), runs every method through
``selfdenoise.api.denoise`` (the classical baselines NLM and BM3D run in the same run unless disabled),
scores the clipped, uint8-quantised output against the clean image with ``metrics.evaluate_pair`` and
writes one JSON per method plus ``report.md`` / ``report.html``.

Timing is the wall time (``time.perf_counter``) of each ``denoise`` call, training included for
zero-shot methods. Peak memory is the peak resident set size (RSS) of this process during a method's
calls: Linux ``VmHWM`` from ``/proc/self/status``, reset before every call through
``/proc/self/clear_refs``; where that reset is not possible, ``resource.getrusage(...).ru_maxrss``
(the peak since the process started, an upper bound). The JSON field ``peak_memory_source`` says which.
``tracemalloc`` is not used: it does not see the memory torch and NumPy allocate in C.
"""
from __future__ import annotations

import os
import platform
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import api
from ..core import metrics
from ..core.errors import InputError, MissingDependencyError
from ..methods import registry
from .landmarks_synth import run_landmarks
from .protocols import BASELINES, PROTOCOLS, TestSet, find_test_images, result_dir, test_pair
from .provenance import PeakMemory, device_description, git_commit
from .report import centre_crop, write_report
from .results import METRIC_KEYS, mean, write_json
from .trained import say, train_for_protocol


def _db(x) -> str:
    return f"{x:.2f} dB"


def _needs_training(method: str) -> bool:
    """True for methods trained on a data set rather than on the image they denoise."""
    return method in registry.IMAGE_METHODS and "dataset" in registry.kinds(method)


@dataclass
class _Acc:
    """Per-method accumulator."""

    per_image: list = field(default_factory=list)
    peak_mb: float = 0.0
    gpu_peak_mb: float | None = None


def run_protocol(protocol: str, data_dir: str | os.PathLike | None, methods: list[str] | None, *,
                 out_dir: str | os.PathLike = "benchmarks/results", limit: int | None = None, every: int = 1, seed: int = 0,
                 dataset: str | None = None, method_options: dict[str, dict] | None = None,
                 command: str | None = None, progress: bool = True, baselines: bool = True,
                 crop_size: int = 128, train: dict | None = None) -> dict:
    """Run ``methods`` (plus the NLM/BM3D baselines unless ``baselines=False``) on a protocol's test
    set and write ``<out_dir>/<protocol>/<method>.json``, ``noisy.json`` (the input's own scores),
    ``report.md`` and ``report.html``.

    ``method_options`` maps a method name to extra ``denoise`` keyword options (``sigma`` included;
    ``model`` = path of a trained model for methods that need training; without one they are trained
    here on the protocol's training set with ``train`` = {minutes|steps, preset, device, ...} and the
    method's own options (e.g. ``target_frames`` of n2n), see ``train_for_protocol``). BM3D is skipped with a
    warning when its optional package is missing. Returns ``{"protocol", "dataset", "dir",
    "results": {method: result}, "noisy": result, "skipped": {method: reason}, "files": [...]}``.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol '{protocol}' (known: {', '.join(PROTOCOLS)})")
    commit = git_commit()  # the code that runs: taken before a run that may last hours
    proto = PROTOCOLS[protocol]
    if not proto.runnable:
        raise InputError(f"protocol '{protocol}' is not runnable yet ({proto.description})")
    if protocol == "landmarks-synth":
        return run_landmarks(methods or ["self2self"], out_dir=out_dir, tracks=5 if limit is None else limit, seed=seed,
                             method_options=method_options, command=command, progress=progress)
    if data_dir is None:
        raise InputError(f"protocol '{protocol}' needs --data (the folder that holds its test images)")
    methods = methods or ["zero-shot"]
    ts = proto.test_set(dataset)
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    if every < 1:
        raise InputError(f"--every must be at least 1, got {every}")
    options = {k.strip().lower(): dict(v or {}) for k, v in (method_options or {}).items()}

    names: list[str] = []
    for m in list(methods) + (list(BASELINES) if baselines else []):
        m = m.strip().lower()
        if m and m not in names:
            names.append(m)
    if not names:
        raise InputError("no methods to run (give --methods, or keep the baselines)")
    train_settings: dict[str, dict] = {}  # -p n2n.crop=64: a training setting of a method trained here
    for m, opts in options.items():  # a misspelt option fails now, not after hours of training
        if m not in names:
            raise InputError(f"an option was given for {m}, which is not in this run ({', '.join(names)})")
        if m in registry.LEARNED and "model" not in opts:
            train_settings[m] = {k: opts.pop(k) for k in list(opts) if k in api.TRAIN_KEYS}
        if m in registry.IMAGE_METHODS:
            registry.check_options(m, {k: v for k, v in opts.items() if k not in ("model", "sigma")})
    trained: dict[str, dict] = {}
    for m in names:
        if not _needs_training(m):
            continue
        if proto.train is None:
            raise InputError(f"method {m} needs training; protocol '{protocol}' has no training set")
        if "model" not in options.get(m, {}):
            if m not in registry.LEARNED:
                raise InputError(f"method {m} cannot be trained in protocol '{protocol}' yet "
                                 "(give a trained model with model=PATH)")
            if not train or not (train.get("minutes") or train.get("steps")):
                raise InputError(f"method {m} is trained first: give --train-minutes or --train-steps")

    model_files = {}
    for m, opts in options.items():  # trained models given as files are loaded once
        if isinstance(opts.get("model"), (str, os.PathLike)):
            model_files[m] = str(opts["model"])
            opts["model"] = api.load_model(opts["model"])
            fit = opts["model"].metadata.get("extra", {}).get("train")
            if fit:  # how the model was trained, from its file
                trained[m] = {"seconds": fit.get("seconds"), "steps": fit.get("steps"), "preset": fit.get("preset"),
                              "device": fit.get("device", "cpu"), "model_file": model_files[m]}
    data_dir = Path(data_dir)
    # Keep each image's index in the whole set: its noise seed must not depend on the subset taken.
    indexed = list(enumerate(find_test_images(data_dir, ts)))[::every]  # an even subset (every camera of PolyU)
    if limit is not None:
        indexed = indexed[:limit]
    files = [f for _, f in indexed]
    base_seed = proto.seed + int(seed)
    n = len(files)
    out_path = result_dir(out_dir, protocol, ts.name)
    for m in names:
        if _needs_training(m) and "model" not in options.get(m, {}):
            method_opts = {k: v for k, v in options.get(m, {}).items() if k != "sigma"}  # e.g. n2n target_frames
            info = train_for_protocol(proto, data_dir, m, out_path, ts, indexed[:6], base_seed, progress=progress,
                                      **(train or {}), **method_opts, **train_settings.get(m, {}))
            options.setdefault(m, {})["model"] = info.pop("trained_model")
            trained[m] = info
    crop_at = sorted({0, n // 2}) if n > 1 else [0]
    memory = PeakMemory()
    acc = {m: _Acc() for m in names}
    noisy_acc = _Acc()
    skipped: dict[str, str] = {}
    crops: list[dict] = []
    run_start = time.perf_counter()

    for i, (index, path) in enumerate(indexed):
        name = ts.image_name(path)
        clean, noisy = test_pair(ts, path, index, base_seed)
        row = {"name": name, **metrics.evaluate_pair(clean, noisy)}
        noisy_acc.per_image.append(row)
        panels = [(f"noisy {_db(row['psnr'])}", metrics.quantize_uint8(centre_crop(noisy, crop_size)))]
        line = [f"[{i + 1}/{n}] {name}: noisy {_db(row['psnr'])}"]

        for m in names:
            if m in skipped:
                continue
            opts = dict(options.get(m, {}))
            default_sigma = ts.sigma if (m in BASELINES and ts.sigma is not None) else "auto"
            sigma = opts.pop("sigma", default_sigma)
            memory.start()
            t0 = time.perf_counter()
            if m in BASELINES and sigma == "auto" and ts.sigma_stride > 1:
                sigma = api.estimate_sigma(noisy, stride=ts.sigma_stride)
            try:
                out = api.denoise(noisy, m, sigma=sigma, seed=int(seed), progress=False, **opts)
            except MissingDependencyError as e:
                if m not in BASELINES:
                    raise
                skipped[m] = str(e)
                warnings.warn(f"skipping {m}: {e}", stacklevel=2)
                say(progress, f"warning: skipping {m}: {e}")
                continue
            seconds = time.perf_counter() - t0
            peak = memory.peak_mb()
            out = np.clip(np.asarray(out, dtype=np.float32).reshape(clean.shape), 0.0, 1.0)
            scores = metrics.evaluate_pair(clean, out)
            a = acc[m]
            a.per_image.append({"name": name, **scores, "seconds": seconds, "peak_memory_mb": peak,
                                **({"sigma": float(sigma)} if not isinstance(sigma, str) else {})})
            a.peak_mb = max(a.peak_mb, peak)
            gpu = memory.gpu_peak_mb()
            if gpu is not None:
                a.gpu_peak_mb = max(a.gpu_peak_mb or 0.0, gpu)
            line.append(f"{m} {_db(scores['psnr'])} {seconds:.1f} s")
            if i in crop_at:
                panels.append((f"{m} {_db(scores['psnr'])}", metrics.quantize_uint8(centre_crop(out, crop_size))))
        if i in crop_at:
            panels.append(("clean", metrics.quantize_uint8(centre_crop(clean, crop_size))))
            crops.append({"name": name, "panels": panels})
        say(progress, ", ".join(line))

    common = {
        "protocol": protocol,
        "dataset": ts.name,
        "n_images": n,
        "device": device_description(),
        "command": command if command is not None else shlex.join(sys.argv),
        "commit": commit,
        "seed": base_seed,
        "noise": ts.noise or "real",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "limit": limit,
        "every": every,
        "peak_memory_source": memory.source,
        "python": platform.python_version(),
    }
    written: list[Path] = []
    results: dict[str, dict] = {}
    for m in names:
        if m in skipped:
            continue
        a = acc[m]
        opts = dict(options.get(m, {}))
        default_sigma = ts.sigma if (m in BASELINES and ts.sigma is not None) else "auto"
        res = {"method": m, **common}
        res.update({k: mean(r[k] for r in a.per_image) for k in METRIC_KEYS})
        res.update({
            "seconds_per_image": mean(r["seconds"] for r in a.per_image),
            "train_seconds": None,
            "peak_memory_mb": a.peak_mb,
            "gpu_peak_memory_mb": a.gpu_peak_mb,
            "sigma": opts.pop("sigma", default_sigma if ts.sigma_stride == 1 or m not in BASELINES
                              else f"auto (patch-PCA on stride-{ts.sigma_stride} sub-images)"),
            "options": {k: v for k, v in opts.items() if k != "model"} | train_settings.get(m, {}),
            **({"model_file": model_files[m]} if m in model_files else {}),
            **({"training": trained[m]} if m in trained else {}),
            "per_image": a.per_image,
        })
        if m in trained:
            res["train_seconds"] = trained[m]["seconds"]
        if ts.group_by:
            res["per_camera"] = _group(a.per_image, ts)
        results[m] = res
        gpu = m in trained and trained[m].get("device", "cpu").startswith("cuda")
        written.append(write_json(out_path / f"{m}{'-gpu' if gpu else ''}.json", res))
    noisy_res = {"method": "noisy", **common,
                 **{k: mean(r[k] for r in noisy_acc.per_image) for k in METRIC_KEYS},
                 "seconds_per_image": None, "train_seconds": None, "peak_memory_mb": None,
                 "per_image": noisy_acc.per_image}
    if ts.group_by:
        noisy_res["per_camera"] = _group(noisy_acc.per_image, ts)
    written.append(write_json(out_path / "noisy.json", noisy_res))
    report = write_report(out_path, protocol, {"noisy": noisy_res, **results}, crops)
    written.extend(report.values())
    say(progress, f"{protocol} ({ts.name}, {n} images) done in {time.perf_counter() - run_start:.0f} s; "
                   f"results in {out_path}")
    summary = {"dir": str(out_path), "n_images": n, **{
        m: {"psnr": r["psnr"], "ssim": r["ssim"], "seconds_per_image": r["seconds_per_image"]}
        for m, r in {"noisy": noisy_res, **results}.items()}}
    return {"protocol": protocol, "dataset": ts.name, "dir": str(out_path), "summary": summary,
            "results": results, "noisy": noisy_res, "skipped": skipped, "files": [str(p) for p in written]}


def _group(per_image: list[dict], ts: TestSet) -> dict[str, dict]:
    groups: dict[str, list[dict]] = {}
    for r in per_image:
        groups.setdefault(ts.group(r["name"]) or "", []).append(r)
    return {g: {"n_images": len(rows), "psnr": mean(r["psnr"] for r in rows),
                "ssim": mean(r["ssim"] for r in rows)} for g, rows in sorted(groups.items())}
