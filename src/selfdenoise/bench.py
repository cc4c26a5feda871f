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

import json
import math
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .errors import InputError, MissingDependencyError
from .io import atomic_write

#: Classical baselines, run in every benchmark run unless disabled.
BASELINES = ("nlm", "bm3d")
#: Methods trained on a data set (not on the test image itself). Known before they are registered so
#: that asking for them gives a clear message rather than "unknown method".
DATASET_METHODS = ("n2n", "ne2ne", "asym-mask", "tcfl")
#: Metrics averaged over the images of a run.
METRIC_KEYS = ("psnr", "ssim", "epi_ratio", "epi_correlation", "gcmse")


@dataclass(frozen=True)
class TestSet:
    """Test images of one protocol: ``folder/pattern`` relative to the data root.

    ``noise`` is the synthetic noise spec (clean images, noise added per image) or None for real
    noisy/clean pairs; then ``pattern`` matches the noisy files and ``pair`` = (noisy marker, clean
    marker) maps a noisy stem ending with the first to the clean file whose stem ends with the second
    (``x_real.JPG`` -> ``x_mean.JPG``, ``10/test.tif`` -> ``10/average.tif``).
    ``sigma`` is the known noise level given to the classical baselines (0-255), None = estimated.
    ``sigma_stride`` > 1: the baselines' estimated sigma is taken on pixel-shuffle sub-images (see
    ``classical.estimate_sigma``), for spatially correlated real noise.
    ``group_by`` = "camera" adds a per-camera breakdown (camera = file name up to the first ``_``).
    """

    name: str
    folder: str
    pattern: str
    noise: str | None = None
    sigma: float | None = None
    sigma_stride: int = 1
    pair: tuple[str, str] | None = None
    group_by: str | None = None
    #: accept the pattern's files case-insensitively for these suffixes (``.JPG`` vs ``.jpg``)
    aliases: tuple[str, ...] = ()

    def image_name(self, path: Path) -> str:
        stem = path.stem
        if self.pair and stem.endswith(self.pair[0]):
            stem = stem[: len(stem) - len(self.pair[0])].rstrip("_")
        return stem or path.parent.name

    def clean_path(self, noisy: Path) -> Path:
        old, new = self.pair  # type: ignore[misc]
        stem = noisy.stem
        if not stem.endswith(old):
            raise InputError(f"{noisy}: expected a name ending in '{old}{noisy.suffix}'")
        return noisy.with_name(stem[: len(stem) - len(old)] + new + noisy.suffix)

    def group(self, name: str) -> str | None:
        return name.split("_", 1)[0] if self.group_by == "camera" else None


@dataclass(frozen=True)
class Protocol:
    """One row of the protocol table: where to test, with what noise, and what training set the
    learned (non-zero-shot) methods use. ``test_sets[0]`` is the default ``dataset``."""

    name: str
    description: str
    test_sets: tuple[TestSet, ...]
    train: str | None = None  # folder/glob of the noisy-only training set ({a,b} allowed); None: nothing
    train_noise: str | None = None  # synthetic noise added to ``train``; None: the files are real noisy images
    #: "folder": the training files of one folder are realisations of one scene (OCT repeated B-scans)
    train_group: str | None = None
    #: folder/glob of unpaired clean images of other scenes, for methods that learn from them (TCFL)
    train_clean: str | None = None
    seed: int = 0  # seed base: image i gets noise seed ``seed + run seed + i``
    reference: str = ""
    runnable: bool = True

    def test_set(self, dataset: str | None) -> TestSet:
        if not self.test_sets:
            raise InputError(f"protocol '{self.name}' has no image test set; it is not runnable yet")
        if dataset is None:
            return self.test_sets[0]
        for ts in self.test_sets:
            if dataset in (ts.name, ts.folder):
                return ts
        names = ", ".join(ts.name for ts in self.test_sets)
        raise InputError(f"protocol '{self.name}' has no dataset '{dataset}' (choose from: {names})")


_KODAK = TestSet("kodak24", "kodak24", "*.png", noise="gauss:25", sigma=25.0)
_SET14 = TestSet("set14", "set14", "*.png", noise="gauss:25", sigma=25.0)
_POLYU = TestSet("polyu", "polyu_real100", "*_real.JPG", pair=("_real", "_mean"), group_by="camera",
                 sigma_stride=3,
                 aliases=("*_real.jpg",))

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("gauss25-color", "Gaussian sigma=25 on colour images", (_KODAK, _SET14),
             train="bsd300_test/*.png", train_noise="gauss:25",
             reference="Kodak: CBM3D 31.87, Neighbor2Neighbor 32.08, Noise2Noise 32.39, Self2Self 31.28"),
    Protocol("gauss5-50-color", "Gaussian sigma ~ U[5,50] training, sigma=25 test (N2N convention)",
             (_KODAK, _SET14), train="bsd300_test/*.png", train_noise="gauss:5-50",
             reference="Ne2Ne Kodak 32.10 (tested with sigma ~ U[5,50])"),
    Protocol("poisson30-color", "Poisson lambda=30 on colour images",
             (TestSet("kodak24", "kodak24", "*.png", noise="poisson:30"),
              TestSet("set14", "set14", "*.png", noise="poisson:30")),
             train="bsd300_test/*.png", train_noise="poisson:30",
             reference="Ne2Ne Kodak 31.44, N2N Kodak 31.66"),
    Protocol("gauss25-gray", "Gaussian sigma=25 on gray images",
             (TestSet("bsd68", "bsd68", "*.png", noise="gauss:25", sigma=25.0),
              TestSet("set12", "set12", "*.png", noise="gauss:25", sigma=25.0)),
             train="bsd400_train/*.png", train_noise="gauss:25",
             reference="BM3D BSD68 28.57, Set12 29.97"),
    Protocol("real-polyu", "real camera noise: *_real.JPG scored against *_mean.JPG", (_POLYU,),
             train="polyu_real100/*_real.JPG", reference="CBM3D 36.98, Self2Self 37.52; noisy 35.97"),
    Protocol("oct-duke", "real OCT speckle: test.tif of subjects 10-18 scored against average.tif",
             (TestSet("duke", "oct_duke_fang2013", "1[0-8]/test.tif", pair=("test", "average")),),
             train="oct_duke_fang2013/0[1-9]/{test,1,2,3,4}.tif", train_group="folder",
             train_clean="oct_duke_fang2013/0[1-9]/average.tif",
             reference="noisy 17.75; BM3D 26.87, NLM 27.06 (estimated sigma); best published 28.25"),
    Protocol("single-image", "each test image alone (zero-shot and classical methods only)",
             (_KODAK, _POLYU), train=None, reference="CBM3D; Self2Self Set9 31.74"),
    # Synthetic sequences, no data folder: run by ``bench_sequences.run_landmarks`` (``limit`` = tracks).
    Protocol("landmarks-synth", "synthetic face-landmark trajectories (1-D tracks)", (),
             reference="Savitzky-Golay, Gaussian smoothing, One Euro filter"),
)}


# ----------------------------------------------------------------------------------------- helpers

def _json_safe(obj):
    """Copy of ``obj`` with NaN/Inf floats replaced by None (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _db(x) -> str:
    return f"{x:.2f} dB"


def _mean(values) -> float | None:
    """Mean ignoring None/NaN (an infinite PSNR of a perfect match stays infinite)."""
    vals = [float(v) for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else None


def write_json(path: str | os.PathLike, data) -> Path:
    """Write JSON atomically (temporary file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_json_safe(data), indent=2, allow_nan=False, default=str) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path


def device_description() -> str:
    """``cpu: N cores, <model>`` (+ the GPU when torch sees one)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"cpu: {cores} cores, {model}"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        text += f"; gpu: {torch.cuda.get_device_name(0)}"
    return text


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """``git rev-parse HEAD`` of the repository holding ``path`` (default: this package), with
    ``-dirty`` when tracked files differ from it; None outside a repository or without git."""
    where = str(path or Path(__file__).resolve().parent)
    try:
        head = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


class PeakMemory:
    """Peak RSS of this process around a call, in MiB (see the module docstring)."""

    def __init__(self):
        self.resettable = self._reset()
        self.source = ("VmHWM (peak RSS, reset before each call)" if self.resettable
                       else "ru_maxrss (process peak since start)")

    @staticmethod
    def _reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def start(self) -> None:
        if self.resettable:
            self._reset()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def peak_mb(self) -> float:
        if self.resettable:
            try:
                for line in Path("/proc/self/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024.0
            except OSError:
                pass
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return kb / (1024.0 * 1024.0) if sys.platform == "darwin" else kb / 1024.0

    @staticmethod
    def gpu_peak_mb() -> float | None:
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 2**20
        return None


def _needs_training(method: str) -> bool:
    """True for methods trained on a data set rather than on the image they denoise."""
    from . import registry

    cls = registry.METHODS.get(method)
    if cls is not None:
        return not getattr(cls, "zero_shot", True)
    return method in DATASET_METHODS


def _centre_crop(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[:2]
    s = min(size, h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return a[top:top + s, left:left + s]


def _find_images(data_dir: Path, ts: TestSet) -> list[Path]:
    folder = data_dir / ts.folder
    if not folder.is_dir():
        if data_dir.name == ts.folder or any(data_dir.glob(ts.pattern)):
            folder = data_dir  # the test set's own folder was given
        else:
            raise InputError(f"{data_dir}: no '{ts.folder}/' folder inside (pass the folder that holds "
                             f"{ts.folder}/, e.g. the shared data folder)")
    files = set()
    for pattern in (ts.pattern, *ts.aliases):
        files.update(p for p in folder.glob(pattern) if p.is_file())
    if not files:
        raise InputError(f"{folder}: no test images matching '{ts.pattern}'")
    return sorted(files)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def result_dir(out_dir: str | os.PathLike, protocol: str, dataset: str | None = None) -> Path:
    """``<out_dir>/<protocol>`` for the protocol's default test set, ``<out_dir>/<protocol>-<dataset>``
    for another one (so runs on different test sets never overwrite each other)."""
    p = PROTOCOLS.get(protocol)
    default = p.test_sets[0].name if p and p.test_sets else None
    name = protocol if dataset in (None, default) else f"{protocol}-{dataset}"
    return Path(out_dir) / name


# ------------------------------------------------------------------------------------------ runner

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
    from . import api, metrics
    from .report import write_report

    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol '{protocol}' (known: {', '.join(PROTOCOLS)})")
    commit = git_commit()  # the code that runs: taken before a run that may last hours
    proto = PROTOCOLS[protocol]
    if not proto.runnable:
        raise InputError(f"protocol '{protocol}' is not runnable yet ({proto.description})")
    if protocol == "landmarks-synth":
        from .bench_sequences import run_landmarks

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
    from .registry import METHODS, all_names, check_options

    train_settings: dict[str, dict] = {}  # -p n2n.crop=64: a training setting of a method trained here
    for m, opts in options.items():  # a misspelt option fails now, not after hours of training
        if m not in names:
            raise InputError(f"an option was given for {m}, which is not in this run ({', '.join(names)})")
        if m in METHODS and "model" not in opts:
            train_settings[m] = {k: opts.pop(k) for k in list(opts) if k in api.TRAIN_KEYS}
        if m in all_names():
            check_options(m, {k: v for k, v in opts.items() if k not in ("model", "sigma")})
    trained: dict[str, dict] = {}
    for m in names:
        if not _needs_training(m):
            continue
        if proto.train is None:
            raise InputError(f"method {m} needs training; protocol '{protocol}' has no training set")
        if "model" not in options.get(m, {}):
            if m not in METHODS:
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
    indexed = list(enumerate(_find_images(data_dir, ts)))[::every]  # an even subset (every camera of PolyU)
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
        panels = [(f"noisy {_db(row['psnr'])}", metrics.quantize_uint8(_centre_crop(noisy, crop_size)))]
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
                _say(progress, f"warning: skipping {m}: {e}")
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
                panels.append((f"{m} {_db(scores['psnr'])}", metrics.quantize_uint8(_centre_crop(out, crop_size))))
        if i in crop_at:
            panels.append(("clean", metrics.quantize_uint8(_centre_crop(clean, crop_size))))
            crops.append({"name": name, "panels": panels})
        _say(progress, ", ".join(line))

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
        res.update({k: _mean(r[k] for r in a.per_image) for k in METRIC_KEYS})
        res.update({
            "seconds_per_image": _mean(r["seconds"] for r in a.per_image),
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
                 **{k: _mean(r[k] for r in noisy_acc.per_image) for k in METRIC_KEYS},
                 "seconds_per_image": None, "train_seconds": None, "peak_memory_mb": None,
                 "per_image": noisy_acc.per_image}
    if ts.group_by:
        noisy_res["per_camera"] = _group(noisy_acc.per_image, ts)
    written.append(write_json(out_path / "noisy.json", noisy_res))
    report = write_report(out_path, protocol, {"noisy": noisy_res, **results}, crops)
    written.extend(report.values())
    _say(progress, f"{protocol} ({ts.name}, {n} images) done in {time.perf_counter() - run_start:.0f} s; "
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
    return {g: {"n_images": len(rows), "psnr": _mean(r["psnr"] for r in rows),
                "ssim": _mean(r["ssim"] for r in rows)} for g, rows in sorted(groups.items())}


# -------------------------------------------------------------------------------------- evaluation

def _stem_index(files: list[Path]) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for f in files:
        if f.stem in index:
            raise InputError(f"{f.parent}: two images share the name '{f.stem}' "
                             f"({index[f.stem].name}, {f.name}); cannot match by name")
        index[f.stem] = f
    return index


def evaluate_folders(clean: str | os.PathLike, test: str | os.PathLike,
                     json_path: str | os.PathLike | None = None) -> dict:
    """Score test images against clean ones, matched by file name without suffix (``x.png`` matches
    ``x.tif``). Either side may be a single file; two single files are paired whatever their names.
    Returns per-image psnr/ssim/epi/gcmse, their means and the unmatched names; writes it as JSON
    when ``json_path`` is given."""
    from . import metrics
    from .io import list_images, read_image

    clean, test = Path(clean), Path(test)
    clean_files, test_files = list_images(clean), list_images(test)
    if clean.is_file() and test.is_file():
        pairs = [(clean_files[0], test_files[0])]
        unmatched_clean: list[str] = []
        unmatched_test: list[str] = []
    else:
        ci, ti = _stem_index(clean_files), _stem_index(test_files)
        names = [s for s in ci if s in ti]
        if not names:
            raise InputError(f"no image in {test} matches a name in {clean} "
                             f"(clean: {', '.join(list(ci)[:3])}...; test: {', '.join(list(ti)[:3])}...)")
        pairs = [(ci[s], ti[s]) for s in names]
        unmatched_clean = sorted(set(ci) - set(ti)) if test.is_dir() else []
        unmatched_test = sorted(set(ti) - set(ci)) if clean.is_dir() else []
    per_image = []
    for c_path, t_path in pairs:
        c, _ = read_image(c_path)
        t, _ = read_image(t_path)
        if c.shape != t.shape:
            raise InputError(f"{t_path}: shape {t.shape[0]}x{t.shape[1]}x{t.shape[-1]} differs from "
                             f"{c_path} ({c.shape[0]}x{c.shape[1]}x{c.shape[-1]})")
        scores = metrics.evaluate_pair(c, t)
        per_image.append({"name": c_path.stem, "clean": str(c_path), "test": str(t_path),
                          **scores})
    mean = {k: _mean(r[k] for r in per_image) for k in METRIC_KEYS}
    result = {"clean": str(clean), "test": str(test), "n_images": len(per_image), **mean, "mean": mean,
              "per_image": per_image, "unmatched_clean": unmatched_clean, "unmatched_test": unmatched_test}
    if json_path is not None:
        write_json(json_path, result)
    return result


def expand_braces(pattern: str) -> list[str]:
    """``a/{x,y}.tif`` -> [``a/x.tif``, ``a/y.tif``] (glob has no braces); nested braces are not needed."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    return [q for alt in m.group(1).split(",") for q in expand_braces(pattern[: m.start()] + alt + pattern[m.end():])]


def protocol_files(data_dir: Path, pattern: str, what: str = "training images") -> list[Path]:
    """The files matching ``pattern`` (a glob with ``{a,b}`` braces) under ``data_dir``; one-line error if none."""
    import glob

    files = sorted({Path(f) for pat in expand_braces(str(data_dir / pattern)) for f in glob.glob(pat)})
    if not files:
        raise InputError(f"{data_dir / pattern}: no {what}")
    return files


def protocol_train_files(proto: Protocol, data_dir: Path) -> list[Path]:
    return protocol_files(data_dir, proto.train)


def protocol_training_set(proto: Protocol, data_dir: Path, realisations: int, seed: int = 1_000_000):
    """The protocol's noisy training images. Synthetic noise (``train_noise``) is drawn once per
    realisation with fixed seeds that no test image uses (``seed + r * 100_000 + i``); real noisy
    files are used as they are, grouped by folder when ``train_group == "folder"`` (the frames of a
    folder are realisations of one scene). Only these noisy images reach the method."""
    from . import data as datamod
    from .api import add_noise
    from .io import read_image

    files = protocol_train_files(proto, data_dir)
    if proto.train_noise is None:
        by_key: dict[str, list] = {}
        for f in files:
            key = str(f.parent) if proto.train_group == "folder" else str(f)
            by_key.setdefault(key, []).append(read_image(f)[0])
        names = [Path(k).name for k in by_key]
        return datamod.from_arrays(list(by_key.values()), names, layout=f"{proto.train} (real noise"
                                   f"{', frames of a folder = one scene' if proto.train_group else ''})")
    groups = []
    for i, f in enumerate(files):
        clean, _ = read_image(f)
        groups.append([add_noise(clean, proto.train_noise, seed=seed + r * 100_000 + i) for r in range(realisations)])
    return datamod.from_arrays(groups, [f.name for f in files], layout=f"{proto.train} + {proto.train_noise}, "
                               f"{realisations} fixed noisy realisation(s) each")


def protocol_clean_images(proto: Protocol, data_dir: Path, method: str) -> tuple[list[np.ndarray], list[str]]:
    """The protocol's unpaired clean domain (``train_clean``), for methods that learn from one."""
    from .io import read_image

    if proto.train_clean is None:
        raise InputError(f"method '{method}' needs unpaired clean images; protocol '{proto.name}' has none")
    files = protocol_files(data_dir, proto.train_clean, "clean training images")
    return [read_image(f)[0] for f in files], [f"{f.parent.name}/{f.name}" for f in files]


def test_pair(ts: TestSet, path: Path, index: int, base_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) of one test image: a real pair, or the clean image with its seeded noise."""
    from .api import add_noise
    from .io import read_image

    if ts.noise is None:
        noisy, _ = read_image(path)
        clean, _ = read_image(ts.clean_path(path))
    else:
        clean, _ = read_image(path)
        noisy = add_noise(clean, ts.noise, seed=base_seed + index)
    if noisy.shape != clean.shape:
        raise InputError(f"{path}: noisy shape {noisy.shape} differs from clean {clean.shape}")
    return clean, noisy


def train_for_protocol(proto: Protocol, data_dir: Path, method: str, out_path: Path, ts: TestSet, curve_images,
                       base_seed: int, *, minutes: float | None = None, steps: int | None = None,
                       preset: str = "fast", device: str = "auto", snapshots: int = 6, progress: bool = True,
                       **options) -> dict:
    """Train ``method`` on the protocol's noisy training set (``model`` saved as
    ``out_path/<method>.sdm``) and measure the PSNR-vs-training-time curve on ``curve_images`` (the
    first test images) from ``snapshots`` in-memory snapshots of the same run."""
    from . import api, metrics
    from .registry import METHODS

    cls = METHODS[method]
    data = protocol_training_set(proto, data_dir, 2 if cls.pairs else 1)
    if getattr(cls, "needs_clean", False):
        data = data.with_clean(*protocol_clean_images(proto, data_dir, method))
    _say(progress, f"training {method} on {data.summary()} for "
                   f"{f'{minutes:g} min' if minutes else f'{steps} steps'} ({preset})")
    marks = [(k + 1) / snapshots for k in range(snapshots - 1)]
    states: list[dict] = []

    def snapshot(step: int, info: dict) -> None:
        frac = max(step / steps if steps else 0.0, info["seconds"] / (minutes * 60.0) if minutes else 0.0)
        if marks and frac >= marks[0]:
            marks.pop(0)
            states.append({"step": step, "seconds": round(info["seconds"], 1),
                           "state": {k: v.detach().clone() for k, v in info["model"].state_dict().items()}})

    out_path.mkdir(parents=True, exist_ok=True)
    r = api.train(data, method, out_path / f"{method}.sdm", minutes=minutes, steps=steps, preset=preset,
                  device=device, progress=progress, on_step=snapshot, log=out_path / f"{method}.train.csv",
                  **options)
    trained = r.model
    final = {"step": r.steps, "seconds": round(r.seconds, 1), "state": None}
    tests = [test_pair(ts, path, index, base_seed) for index, path in curve_images]
    curve = []
    keep = {k: v.clone() for k, v in trained.network.state_dict().items()}
    for snap in states + [final]:
        if snap["state"] is not None:
            trained.network.load_state_dict(snap["state"])
        else:
            trained.network.load_state_dict(keep)
        q = metrics.quantize_uint8
        psnr = [metrics.psnr(q(c), q(trained.denoise(x))) for c, x in tests]  # uint8, as the protocol scores
        curve.append({"step": snap["step"], "train_seconds": snap["seconds"], "psnr": float(np.mean(psnr))})
    trained.network.load_state_dict(keep)
    return {"trained_model": trained, "seconds": round(r.seconds, 1), "steps": r.steps,
            "gflops_per_s": r.gflops_per_s, "flops_per_step": r.flops_per_step, "preset": preset,
            "device": str(next(trained.network.parameters()).device), "minutes": minutes,
            "data": r.data, "model_file": f"{method}.sdm",
            "method_config": trained.method.config(),
            "curve": {"images": [p.name for _, p in curve_images], "points": curve}}
