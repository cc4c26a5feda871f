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
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import api
from ..core import metrics
from ..core.errors import InputError, MissingDependencyError
from ..methods import registry
from ..methods.zero_shot import prior_training_files
from .journal import Journal
from .landmarks_synth import run_landmarks
from .peers import PEERS, check_peers, peer_label, run_peer
from .protocols import (
    BASELINES,
    PROTOCOLS,
    Protocol,
    TestImage,
    TestSet,
    check_disjoint,
    find_test_images,
    result_dir,
    test_pair,
    test_volume,
)
from .provenance import PeakMemory, git_commit, origin, require_clean_tree
from .report import centre_crop, write_report
from .results import METRIC_KEYS, add_paired_wins, mean, sd, write_json
from .trained import recipe, say, train_for_protocol

#: seed offset of the second noisy realisation that a Noise2Noise peer gets (no test input uses it)
SECOND_REALISATION = 500_000


def _db(x) -> str:
    return f"{x:.2f} dB"


def _needs_training(method: str, proto: Protocol) -> bool:
    """True for methods trained on a data set rather than on the image they denoise; a method that can do both
    (``self2self``, ``n2v``, ...) fits each image where the protocol has no training set (``single-image``)."""
    if method not in registry.IMAGE_METHODS or "dataset" not in registry.kinds(method):
        return False
    return proto.train is not None or "single-image" not in registry.kinds(method)


def poisson_noise(ts: TestSet) -> bool:
    """True when the test set's synthetic noise has a Poisson part (the baselines then get a VST)."""
    return bool(ts.noise) and "poisson" in ts.noise


def _baseline_sigma_note(ts: TestSet):
    """How the baselines got their noise level, for the result file."""
    if ts.sigma is not None:
        return ts.sigma
    if poisson_noise(ts):
        return f"generalized Anscombe VST with the true noise model {ts.noise}, exact unbiased inverse"
    return ("auto (patch-PCA; on stride-3 sub-images when the noise is spatially correlated; a fitted "
            "Poisson-Gaussian model through the VST when it is white and signal dependent)")


def _default_sigma(method: str, ts: TestSet):
    """The sigma a method gets when none is given: the test set's for the baselines, else ``"auto"``."""
    return ts.sigma if (method in BASELINES and ts.sigma is not None) else "auto"


@dataclass
class _Acc:
    """Per-method accumulator."""

    per_image: list = field(default_factory=list)
    peak_mb: float = 0.0
    gpu_peak_mb: float | None = None


@dataclass
class RunPlan:
    """A validated run of an image protocol: what ``plan_run`` decided, before any training.

    ``options`` (per-method ``denoise`` options, a loaded model under ``model``) and ``trained`` (how each
    model was trained) are completed by ``_train_methods``.
    """

    protocol: str
    proto: Protocol
    ts: TestSet
    names: list[str]
    options: dict[str, dict]
    train_settings: dict[str, dict]  # -p n2n.crop=64: a training setting of a method trained here
    model_files: dict[str, str]
    trained: dict[str, dict]
    data_dir: Path
    indexed: list[TestImage]
    split: str
    exploratory: bool
    peers: list[str]  # peer tools run beside ours (``bench.peers``)
    peer_budget: float | None
    peer_env: tuple | None  # (python, runner) of the peers' environment
    base_seed: int
    out_path: Path
    commit: str | None
    seed: int
    limit: int | None
    every: int
    command: str | None
    progress: bool
    crop_size: int
    train: dict | None
    training_journal: Journal | None = None  # the models trained in this run (``_train_methods``)

    @property
    def n_images(self) -> int:
        return len(self.indexed)


@dataclass
class _RunState:
    """What ``_run_images`` gathers: per-method scores, the noisy input's own, skipped methods, crops, and
    the (method, image) pairs that failed."""

    acc: dict[str, _Acc]
    memory: PeakMemory
    start: float
    journal: Journal
    noisy: _Acc = field(default_factory=_Acc)
    skipped: dict[str, str] = field(default_factory=dict)
    crops: list[dict] = field(default_factory=list)
    failed: dict[str, list[dict]] = field(default_factory=dict)
    #: (method, volume file) -> (its denoised volume, seconds, peak MiB): a method of volumes denoises each once
    volumes: dict[tuple[str, str], tuple[np.ndarray, float, float | None]] = field(default_factory=dict)


def run_protocol(protocol: str, data_dir: str | os.PathLike | None, methods: list[str] | None, *,
                 out_dir: str | os.PathLike = "benchmarks/results", limit: int | None = None, every: int = 1, seed: int = 0,
                 dataset: str | None = None, method_options: dict[str, dict] | None = None,
                 command: str | None = None, progress: bool = True, baselines: bool = True,
                 crop_size: int = 128, train: dict | None = None, split: str = "test",
                 exploratory: bool = False, peers: list[str] | None = None, peer_budget: float = 30.0) -> dict:
    """Run ``methods`` (plus the NLM/BM3D baselines unless ``baselines=False``) on a protocol's ``split``
    (``test``, or ``validation`` where settings are selected) and write ``<out_dir>/<protocol>/<method>.json``
    (``result_dir``), ``noisy.json`` (the input's own scores), ``report.md`` and ``report.html``.

    Results come from committed code: a tree with uncommitted changes is refused unless ``exploratory``
    (then every JSON says so, and the README's table leaves it out). ``peers`` (``bench.peers.PEERS``) run
    in the same run on the same noisy inputs, each trained on the image for ``peer_budget`` seconds.

    ``method_options`` maps a method name to extra ``denoise`` keyword options (``sigma`` included;
    ``model`` = path of a trained model for methods that need training; without one they are trained
    here on the protocol's training set with ``train`` = {minutes|steps, preset, device, ...} and the
    method's own options (e.g. ``target_frames`` of n2n), see ``train_for_protocol``). BM3D is skipped with a
    warning when its optional package is missing. Returns ``{"protocol", "dataset", "dir",
    "results": {method: result}, "noisy": result, "skipped": {method: reason}, "failed": {method: [{name, error}]},
    "files": [...]}``. Each result is journaled as it is made (``bench.journal``): the same command after a kill
    or a failure runs only what is missing.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol '{protocol}' (known: {', '.join(PROTOCOLS)})")
    commit = git_commit()  # the code that runs: taken before a run that may last hours
    proto = PROTOCOLS[protocol]
    if not proto.runnable:
        raise InputError(f"protocol '{protocol}' is not runnable yet ({proto.description})")
    if protocol == "landmarks-synth":
        return run_landmarks(methods or ["self2self"], out_dir=out_dir, tracks=5 if limit is None else limit, seed=seed,
                             method_options=method_options, command=command, progress=progress, split=split,
                             exploratory=exploratory)
    plan = plan_run(protocol, data_dir, methods, commit=commit, out_dir=out_dir, limit=limit, every=every, seed=seed,
                    dataset=dataset, method_options=method_options, command=command, progress=progress,
                    baselines=baselines, crop_size=crop_size, train=train, split=split, exploratory=exploratory,
                    peers=peers or [], peer_budget=peer_budget)
    _train_methods(plan)
    return _write_results(plan, _run_images(plan))


def plan_run(protocol: str, data_dir: str | os.PathLike | None, methods: list[str] | None, *, commit: str | None,
             out_dir: str | os.PathLike, limit: int | None, every: int, seed: int, dataset: str | None,
             method_options: dict[str, dict] | None, command: str | None, progress: bool, baselines: bool,
             crop_size: int, train: dict | None, split: str = "test", exploratory: bool = False,
             peers: list[str] = (), peer_budget: float | None = None) -> RunPlan:
    """Check a run of the runnable image protocol ``protocol`` and load the model files it is given.

    Every user error is raised here, a misspelt option included, so none comes after hours of training.
    """
    proto = PROTOCOLS[protocol]
    if data_dir is None:
        raise InputError(f"protocol '{protocol}' needs --data (the folder that holds its test images)")
    methods = methods or ["zero-shot"]
    ts = proto.test_set(dataset, split)
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    if every < 1:
        raise InputError(f"--every must be at least 1, got {every}")
    options = {k.strip().lower(): dict(v or {}) for k, v in (method_options or {}).items()}
    names = _method_names(methods, baselines)
    train_settings = _check_options(names, options, proto)
    _check_training(protocol, proto, names, options, train)
    model_files, trained = _load_model_files(options)
    _check_volume_methods(protocol, ts, names, options)
    peer_env = check_peers(list(peers)) if peers else None
    if "careamics-n2n" in peers and not ts.noise:
        raise InputError("peer careamics-n2n needs a second noisy realisation: only on synthetic-noise test sets")
    require_clean_tree(commit, exploratory)  # after the user's own errors, before any work
    data_dir = Path(data_dir)
    # Keep each image's index in the whole set: its noise seed must not depend on the subset taken.
    items = find_test_images(data_dir, ts)
    _check_models_are_disjoint(proto, items, names, options)
    indexed = items[::every]  # an even subset (every camera of PolyU)
    if limit is not None:
        indexed = indexed[:limit]
    base_seed = proto.seed + int(seed)
    return RunPlan(protocol=protocol, proto=proto, ts=ts, names=names, options=options,
                   train_settings=train_settings, model_files=model_files, trained=trained, data_dir=data_dir,
                   indexed=indexed, split=split, exploratory=exploratory, peers=list(peers), peer_budget=peer_budget,
                   peer_env=peer_env, base_seed=base_seed,
                   out_path=result_dir(out_dir, protocol, ts.name, split),
                   commit=commit, seed=seed, limit=limit, every=every, command=command, progress=progress,
                   crop_size=crop_size, train=train)


def _method_names(methods: list[str], baselines: bool) -> list[str]:
    """The methods of the run, normalised and without repeats, the baselines last."""
    names: list[str] = []
    for m in list(methods) + (list(BASELINES) if baselines else []):
        m = m.strip().lower()
        if m and m not in names:
            names.append(m)
    if not names:
        raise InputError("no methods to run (give --methods, or keep the baselines)")
    return names


def _check_options(names: list[str], options: dict[str, dict], proto: Protocol) -> dict[str, dict]:
    """Check each method's options; move the training settings of methods trained here out of ``options``
    and return them (method -> settings)."""
    train_settings: dict[str, dict] = {}
    for m, opts in options.items():  # a misspelt option fails now, not after hours of training
        if m not in names:
            raise InputError(f"an option was given for {m}, which is not in this run ({', '.join(names)})")
        if _needs_training(m, proto) and "model" not in opts:  # a single-image method's lr/crop/batch are its options
            train_settings[m] = {k: opts.pop(k) for k in list(opts) if k in api.TRAINING_SETTINGS}
        if m in registry.IMAGE_METHODS:
            registry.check_options(m, {k: v for k, v in opts.items() if k not in ("model", "sigma", "init")})
    return train_settings


def _check_training(protocol: str, proto: Protocol, names: list[str], options: dict[str, dict],
                    train: dict | None) -> None:
    """Check that every method that needs training has a model file or can be trained here."""
    for m in names:
        if not _needs_training(m, proto):
            continue
        if proto.train is None:
            raise InputError(f"method {m} needs training; protocol '{protocol}' has no training set")
        if "model" not in options.get(m, {}):
            if m not in registry.LEARNED:
                raise InputError(f"method {m} cannot be trained in protocol '{protocol}' yet "
                                 "(give a trained model with model=PATH)")
            if not train or not (train.get("minutes") or train.get("steps")):
                raise InputError(f"method {m} is trained first: give --train-minutes or --train-steps")


def _check_volume_methods(protocol: str, ts: TestSet, names: list[str], options: dict[str, dict]) -> None:
    """A method of volumes runs only where the test images are slices of volumes (``TestSet.slices``)."""
    for m in names:
        model = options.get(m, {}).get("model")
        volumes = model.volumetric if isinstance(model, api.TrainedModel) else \
            _needs_training(m, PROTOCOLS[protocol]) and registry.get_method(m).data_needs().ndim == 3
        if volumes and ts.slices is None:
            raise InputError(f"method {m} denoises volumes; the test images of '{protocol}' ({ts.name}) are 2-D "
                             "(it runs where they are slices of a volume, e.g. poisson-3d)")


def _load_model_files(options: dict[str, dict]) -> tuple[dict[str, str], dict[str, dict]]:
    """Load, once, the trained models given as files (in place in ``options``); return method -> file and
    method -> how its model was trained (from the file, where it says)."""
    model_files: dict[str, str] = {}
    trained: dict[str, dict] = {}
    for m, opts in options.items():
        if isinstance(opts.get("model"), (str, os.PathLike)):
            model_files[m] = str(opts["model"])
            opts["model"] = api.load_model(opts["model"])
            fit = opts["model"].metadata.get("extra", {}).get("train")
            if fit:  # how the model was trained, from its file
                trained[m] = {"seconds": fit.get("seconds"), "steps": fit.get("steps"), "preset": fit.get("preset"),
                              "recipe": recipe(fit), "device": fit.get("device", "cpu"), "model_file": model_files[m]}
    return model_files, trained


def _check_models_are_disjoint(proto: Protocol, items: list[TestImage], names: list[str],
                               options: dict[str, dict]) -> None:
    """No model may have trained on the test images (the zero-shot prior included), unless the protocol
    is transductive."""
    if "zero-shot" in names:
        prior = options.get("zero-shot", {}).get("prior_path")
        check_disjoint(proto, items, prior_training_files(prior), "the zero-shot prior")
    for m, opts in options.items():
        if isinstance(opts.get("model"), api.TrainedModel):
            sources = opts["model"].metadata.get("extra", {}).get("data", {}).get("sources")
            check_disjoint(proto, items, sources, f"model {opts['model'].path}")


def _train_methods(plan: RunPlan) -> None:
    """Train, on the protocol's training set, each method that needs training and was given no model.
    The run's training journal keeps what a kill would lose (snapshots, a finished training)."""
    to_train = [m for m in plan.names if _needs_training(m, plan.proto) and "model" not in plan.options.get(m, {})]
    if to_train:
        plan.training_journal = Journal(plan.out_path, {**journal_key(plan), "stage": "training"},
                                        resume=not plan.exploratory)
    for m in to_train:
        method_opts = {k: v for k, v in plan.options.get(m, {}).items() if k != "sigma"}  # e.g. n2n target_frames
        info = train_for_protocol(plan.proto, plan.data_dir, m, plan.out_path, plan.ts, plan.indexed[:6],
                                  plan.base_seed, progress=plan.progress, keep=plan.training_journal.crops,
                                  **(plan.train or {}), **method_opts, **plan.train_settings.get(m, {}))
        plan.options.setdefault(m, {})["model"] = info.pop("trained_model")
        plan.trained[m] = info


def journal_key(plan: RunPlan) -> dict:
    """Everything that decides a run's results: a journal is resumed only by the same run."""
    options = {m: {k: (v.path if isinstance(v, api.TrainedModel) else v) for k, v in o.items()}
               for m, o in plan.options.items()}
    return {"protocol": plan.protocol, "split": plan.split, "dataset": plan.ts.name, "commit": plan.commit,
            "seed": plan.base_seed, "every": plan.every, "limit": plan.limit, "methods": plan.names,
            "peers": plan.peers, "peer_budget": plan.peer_budget, "options": options,
            "train": {k: v for k, v in plan.train.items() if k != "checkpoint_minutes"} if plan.train else plan.train,
            "train_settings": plan.train_settings}


def _run_images(plan: RunPlan) -> _RunState:
    """Denoise every test image with every method, scoring each output; keep centre crops of a few images.
    Each result goes to the run's journal as it is made; what the journal already holds is not run again;
    a method that fails on an image is recorded (``run.failed``) and the run goes on."""
    ts, n = plan.ts, plan.n_images
    crop_at = sorted({0, n // 2}) if n > 1 else [0]
    run = _RunState(acc={m: _Acc() for m in [*plan.names, *plan.peers]}, memory=PeakMemory(),
                    start=time.perf_counter(),
                    journal=Journal(plan.out_path, journal_key(plan), resume=not plan.exploratory))
    if len(run.journal):
        say(plan.progress, f"continuing an interrupted run: {len(run.journal)} results from {run.journal.path}")
    for i, item in enumerate(plan.indexed):
        name = item.name
        clean, noisy = test_pair(ts, item, plan.base_seed)
        row = {"name": name, **metrics.evaluate_pair(clean, noisy, ts.metric)}
        run.noisy.per_image.append(row)
        panels = [(f"noisy {_db(row['psnr'])}", metrics.quantize_uint8(centre_crop(noisy, plan.crop_size)))]
        line = [f"[{i + 1}/{n}] {name}: noisy {_db(row['psnr'])}"]
        for m in [*plan.names, *plan.peers]:
            if m in run.skipped:
                continue
            row, crop = run.journal.done(name, m), run.journal.crop(name, m) if i in crop_at else None
            if row is None:
                try:
                    done = _run_peer(plan, m, item, clean, noisy) if m in plan.peers else \
                        _run_method(plan, run, m, item, clean, noisy)
                except MissingDependencyError as e:
                    if m not in BASELINES:
                        raise
                    run.skipped[m] = str(e)
                    warnings.warn(f"skipping {m}: {e}", stacklevel=3)  # at the caller of run_protocol
                    say(plan.progress, f"warning: skipping {m}: {e}")
                    continue
                except Exception as e:  # one method failing on one image loses nothing else
                    reason = f"{type(e).__name__}: {e}"
                    run.failed.setdefault(m, []).append({"name": name, "error": reason})
                    say(plan.progress, f"error: {m} failed on {name}: {reason}")
                    continue
                out, row = done
                crop = metrics.quantize_uint8(centre_crop(out, plan.crop_size)) if i in crop_at else None
                run.journal.add(name, m, row, crop)
            a = run.acc[m]
            a.per_image.append(row)
            a.peak_mb = max(a.peak_mb, row.get("peak_memory_mb") or 0.0)
            if row.get("gpu_peak_memory_mb") is not None:
                a.gpu_peak_mb = max(a.gpu_peak_mb or 0.0, row["gpu_peak_memory_mb"])
            line.append(f"{m} {_db(row['psnr'])} {row['seconds']:.1f} s")
            if crop is not None:
                panels.append((f"{m} {_db(row['psnr'])}", crop))
        if i in crop_at:
            panels.append(("clean", metrics.quantize_uint8(centre_crop(clean, plan.crop_size))))
            run.crops.append({"name": name, "panels": panels})
        say(plan.progress, ", ".join(line))
    return run


def _run_method(plan: RunPlan, run: _RunState, m: str, item: TestImage, clean: np.ndarray,
                noisy: np.ndarray) -> tuple[np.ndarray, dict]:
    """Denoise one image with method ``m``: its output and its result row (scores, time, peak memory)."""
    ts, name = plan.ts, item.name
    opts = dict(plan.options.get(m, {}))
    if _volumetric(opts.get("model")):
        return _run_volume_method(plan, run, m, item, clean)
    sigma = opts.pop("sigma", _default_sigma(m, ts))
    if m in BASELINES and sigma == "auto" and poisson_noise(ts):
        opts.setdefault("noise", ts.noise)  # the true noise model: the baseline runs through the Anscombe VST
    # else "auto": the baseline estimates the noise the image has, exactly as the CLI and API do
    out, seconds, peak = _timed_denoise(plan, run, m, noisy, clean.shape, sigma=sigma, **opts)
    row = {"name": name, **metrics.evaluate_pair(clean, out, ts.metric), "seconds": seconds, "peak_memory_mb": peak,
           **({"sigma": float(sigma)} if not isinstance(sigma, str) else {})}
    return out, _with_gpu_peak(run, row)


def _timed_denoise(plan: RunPlan, run: _RunState, m: str, noisy: np.ndarray, shape: tuple,
                   **opts) -> tuple[np.ndarray, float, float | None]:
    """``api.denoise`` of ``noisy`` by ``m``, timed and its peak memory taken: (output reshaped to ``shape`` and
    clipped to [0, 1], seconds, peak MiB); an output holding NaN or Inf is an error."""
    run.memory.start()
    t0 = time.perf_counter()
    out = api.denoise(noisy, m, seed=int(plan.seed), progress=False, **opts)
    seconds = time.perf_counter() - t0
    peak = run.memory.peak_mb()
    out = np.clip(np.asarray(out, dtype=np.float32).reshape(shape), 0.0, 1.0)
    if not np.all(np.isfinite(out)):
        raise FloatingPointError("the output holds NaN or Inf values")
    return out, seconds, peak


def _with_gpu_peak(run: _RunState, row: dict) -> dict:
    """``row`` with the GPU's peak memory of the call, where there is a GPU."""
    gpu = run.memory.gpu_peak_mb()
    return row if gpu is None else {**row, "gpu_peak_memory_mb": gpu}


def _volumetric(model) -> bool:
    """True for a trained model of volumes (it denoises a slice's whole volume)."""
    return isinstance(model, api.TrainedModel) and model.volumetric


#: how ``seconds_per_image`` is measured for a method of volumes (its JSON says so)
VOLUME_SECONDS = ("the whole noisy volume denoised once (volume_seconds); seconds per image = that time / the planes "
                  "of the volume")


def _run_volume_method(plan: RunPlan, run: _RunState, m: str, item: TestImage,
                       clean: np.ndarray) -> tuple[np.ndarray, dict]:
    """A slice's output and result row for a method of volumes: the slice's whole noisy volume is denoised once
    (``test_volume``, the noise the 2-D methods see) and the slice is scored exactly as theirs; its seconds are
    the volume's time over its planes (``VOLUME_SECONDS``)."""
    opts = {k: v for k, v in plan.options.get(m, {}).items() if k != "sigma"}
    key = (m, str(item.path))
    if key not in run.volumes:
        _, noisy = test_volume(plan.ts, item, plan.base_seed)
        run.volumes[key] = _timed_denoise(plan, run, m, noisy, noisy.shape, **opts)
    volume, seconds, peak = run.volumes[key]
    out = volume[item.z].reshape(clean.shape)
    row = {"name": item.name, **metrics.evaluate_pair(clean, out, plan.ts.metric),
           "seconds": seconds / len(volume), "volume_seconds": seconds, "peak_memory_mb": peak}
    return out, _with_gpu_peak(run, row)


def _run_peer(plan: RunPlan, peer: str, item: TestImage, clean: np.ndarray,
              noisy: np.ndarray) -> tuple[np.ndarray, dict]:
    """Denoise one image with a peer tool in its own environment: its output and its result row."""
    second = None
    if peer == "careamics-n2n":  # a second realisation of the same scene, never used by the test
        second = api.add_noise(clean, plan.ts.noise, seed=plan.base_seed + item.index + SECOND_REALISATION)
    t0 = time.perf_counter()
    python, runner = plan.peer_env
    out, info = run_peer(peer, noisy, budget=plan.peer_budget, seed=plan.seed, python=python, runner=runner,
                         second=second)
    seconds = time.perf_counter() - t0
    out = np.clip(out.reshape(clean.shape), 0.0, 1.0)
    scores = metrics.evaluate_pair(clean, out, plan.ts.metric)
    return out, {"name": item.name, **scores, "seconds": seconds, "peer_report": info}


def _write_results(plan: RunPlan, run: _RunState) -> dict:
    """Write one JSON per method that ran, ``noisy.json`` and the report; return ``run_protocol``'s dict."""
    ts, n = plan.ts, plan.n_images
    common = {
        "protocol": plan.protocol,
        "split": plan.split,
        "dataset": ts.name,
        "n_images": n,
        "metric": ts.metric,
        **origin(plan.commit, plan.command),
        "seed": plan.base_seed,
        "noise": ts.noise or "real",
        "limit": plan.limit,
        "every": plan.every,
        "peak_memory_source": run.memory.source,
        **({"exploratory": True} if plan.exploratory else {}),
    }
    written: list[Path] = []
    results: dict[str, dict] = {}
    for m in [*plan.names, *plan.peers]:
        if m in run.skipped or not run.acc[m].per_image:
            continue
        results[m] = _peer_result(plan, m, run.acc[m], common) if m in plan.peers else \
            _method_result(plan, m, run.acc[m], common)
        if m in run.failed:  # a mean over fewer images: kept out of the README's tables
            results[m]["failed"] = run.failed[m]
    add_paired_wins(results)
    for m, res in results.items():
        gpu = m in plan.trained and plan.trained[m].get("device", "cpu").startswith("cuda")
        written.append(write_json(plan.out_path / f"{m}{'-gpu' if gpu else ''}.json", res))
    noisy_res = {"method": "noisy", **common,
                 **{k: mean(r.get(k) for r in run.noisy.per_image) for k in METRIC_KEYS},
                 "seconds_per_image": None, "train_seconds": None, "peak_memory_mb": None,
                 "per_image": run.noisy.per_image}
    if ts.group_by:
        noisy_res["per_camera"] = _group(run.noisy.per_image, ts)
    written.append(write_json(plan.out_path / "noisy.json", noisy_res))
    report = write_report(plan.out_path, plan.protocol, {"noisy": noisy_res, **results}, run.crops)
    written.extend(report.values())
    if not run.failed:
        run.journal.finish()
        if plan.training_journal is not None:
            plan.training_journal.finish()
    say(plan.progress, f"{plan.protocol} ({ts.name}, {n} images) done in {time.perf_counter() - run.start:.0f} s; "
                       f"results in {plan.out_path}")
    summary = {"dir": str(plan.out_path), "n_images": n, **{
        m: {"psnr": r["psnr"], "ssim": r["ssim"], "seconds_per_image": r["seconds_per_image"]}
        for m, r in {"noisy": noisy_res, **results}.items()}}
    return {"protocol": plan.protocol, "dataset": ts.name, "dir": str(plan.out_path), "summary": summary,
            "results": results, "noisy": noisy_res, "skipped": run.skipped, "failed": run.failed,
            "files": [str(p) for p in written]}


def _method_result(plan: RunPlan, m: str, a: _Acc, common: dict) -> dict:
    """The result of method ``m``: the run's common fields, mean scores, settings and per-image rows."""
    ts = plan.ts
    opts = dict(plan.options.get(m, {}))
    res = {"method": m, **common}
    res.update({k: mean(r.get(k) for r in a.per_image) for k in METRIC_KEYS})
    res.update({f"{k}_sd": sd(r[k] for r in a.per_image) for k in ("psnr", "ssim")})
    res.update({
        "seconds_per_image": mean(r["seconds"] for r in a.per_image),
        "train_seconds": None,
        "peak_memory_mb": a.peak_mb,
        "gpu_peak_memory_mb": a.gpu_peak_mb,
        "sigma": opts.pop("sigma", _baseline_sigma_note(ts) if m in BASELINES else "auto"),
        "options": {k: v for k, v in opts.items() if k != "model"} | plan.train_settings.get(m, {}),
        **({"model_file": plan.model_files[m]} if m in plan.model_files else {}),
        **({"training": plan.trained[m]} if m in plan.trained else {}),
        "per_image": a.per_image,
    })
    if m in plan.trained:
        res["train_seconds"] = plan.trained[m]["seconds"]
    if _volumetric(plan.options.get(m, {}).get("model")):
        res["seconds_per_image_basis"] = VOLUME_SECONDS
    if ts.group_by:
        res["per_camera"] = _group(a.per_image, ts)
    return res


def _peer_result(plan: RunPlan, peer: str, a: _Acc, common: dict) -> dict:
    """The result of a peer tool: as a method's, plus the tool, its version and the configuration it ran."""
    report = a.per_image[0]["peer_report"] if a.per_image else {}
    res = {"method": peer, **common, "peer": peer_label(peer, report), "peer_method": PEERS[peer][1],
           "peer_versions": report.get("versions", {}),
           **{k: mean(r.get(k) for r in a.per_image) for k in METRIC_KEYS},
           **{f"{k}_sd": sd(r[k] for r in a.per_image) for k in ("psnr", "ssim")},
           "seconds_per_image": mean(r["seconds"] for r in a.per_image), "train_seconds": None,
           "peak_memory_mb": None, "budget_seconds": plan.peer_budget, "options": report.get("config", {}),
           "per_image": [{k: v for k, v in r.items() if k != "peer_report"} for r in a.per_image]}
    if plan.ts.group_by:
        res["per_camera"] = _group(a.per_image, plan.ts)
    return res


def _group(per_image: list[dict], ts: TestSet) -> dict[str, dict]:
    groups: dict[str, list[dict]] = {}
    for r in per_image:
        groups.setdefault(ts.group(r["name"]) or "", []).append(r)
    return {g: {"n_images": len(rows), "psnr": mean(r["psnr"] for r in rows),
                "ssim": mean(r["ssim"] for r in rows)} for g, rows in sorted(groups.items())}
