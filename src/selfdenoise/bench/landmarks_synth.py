"""The ``landmarks-synth`` benchmark: sequence denoisers on synthetic face-landmark tracks.

Tracks come from ``sequences.landmarks.synth_track`` (478 points x 3 coords x 900 frames): test track i has
seed ``run seed + i``; the classical smoothers (Savitzky-Golay, Gaussian, One Euro) are tuned by grid
search on one separate track with seed ``TUNE_SEED + run seed`` and then run on every test track
with those parameters, in the same run as the learned method(s). Self2Self never sees a clean track.

Scores are in normalised coordinates (x as a fraction of the 640-pixel frame width; ``*_px`` fields
multiply by 640): the RMSE over every value of every test track (pooled: the square root of the mean
squared error), and separately over the outlier frames (bad detections in the noisy input), the
missing frames (NaN in the input, filled by the method) and the other frames. Seconds are the wall
time per track of the method's call (tuning time is reported apart).
Writes ``<out>/landmarks-synth/<method>.json``, ``noisy.json``, ``report.md`` and ``trajectory.png``.
"""
from __future__ import annotations

import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .. import api
from ..core.errors import InputError
from ..core.io import atomic_write
from ..methods import registry
from ..sequences import smoothers
from ..sequences.landmarks import synth_track
from .protocols import SPLITS
from .provenance import git_commit, origin, require_clean_tree
from .results import write_json

PROTOCOL = "landmarks-synth"
BASELINES = ("savgol", "gaussian", "one-euro")
TUNE_SEED = 1_000_000  # the smoothers' parameters are tuned on this track (validation seeds are >= 1,000,000)
VALIDATION_SEED = 1_000_001
PX = 640.0  # pixels per x unit (the generator's frame width)


def _scores(clean: np.ndarray, out: np.ndarray, info: dict) -> dict:
    """Sums of squared errors and counts per frame group (pooled over tracks later)."""
    err = (np.asarray(out, np.float64) - clean) ** 2
    frames = np.arange(clean.shape[0])
    groups = {"all": np.ones(len(frames), bool), "outlier_frames": np.isin(frames, info["outlier_frames"]),
              "missing_frames": np.isin(frames, info["missing_frames"])}
    groups["other_frames"] = ~(groups["outlier_frames"] | groups["missing_frames"])
    out_d = {}
    for g, sel in groups.items():
        e = err[sel]
        ok = ~np.isnan(e)
        out_d[g] = (float(e[ok].sum()), int(ok.sum()))
    return out_d


def _pooled(rows: list[dict], group: str) -> float | None:
    sse = sum(r["sse"][group][0] for r in rows)
    n = sum(r["sse"][group][1] for r in rows)
    return float(np.sqrt(sse / n)) if n else None


def per_frame_error(clean: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Root mean square error of each frame over its points and coordinates (NaN where unknown)."""
    e = ((np.asarray(out, np.float64) - clean) ** 2).reshape(clean.shape[0], -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames give NaN
        return np.sqrt(np.nanmean(e, axis=1))


def run_landmarks(methods=("self2self",), *, out_dir="benchmarks/results", tracks: int = 5, seed: int = 0,
                  method_options: dict[str, dict] | None = None, command: str | None = None, progress: bool = True,
                  frames: int = 900, points: int = 478, split: str = "test", exploratory: bool = False) -> dict:
    """Run ``methods`` and the tuned smoothers on ``tracks`` synthetic tracks of ``split`` (test: seeds
    ``seed + i``; validation: seeds ``VALIDATION_SEED + seed + i``, never tested on); write JSON + report
    (the validation split under ``<out_dir>/landmarks-synth-validation``)."""
    if tracks < 1:
        raise InputError(f"--limit (tracks) must be at least 1, got {tracks}")
    if split not in SPLITS:
        raise InputError(f"unknown split '{split}' (choose from: {', '.join(SPLITS)})")
    commit = require_clean_tree(git_commit(), exploratory)  # the code that runs, taken before the run
    names = []
    for m in [*methods, *BASELINES]:
        m = m.strip().lower()
        if m and m not in names:
            names.append(registry.check_sequence_method(m))
    options = {k.strip().lower(): {kk: vv for kk, vv in (v or {}).items() if vv is not None}
               for k, v in (method_options or {}).items()}
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if progress else (lambda text: None)
    run_start = time.perf_counter()

    tune_seed = TUNE_SEED + int(seed)
    tuned = _tune_smoothers(names, options, tune_seed, frames, points, say)
    first = int(seed) + (VALIDATION_SEED if split == "validation" else 0)
    test_seeds = [first + i for i in range(tracks)]
    rows, plot_data = _run_tracks(names, options, test_seeds, frames, points, say)

    common = {"protocol": PROTOCOL, "split": split, **({"exploratory": True} if exploratory else {}),
              "dataset": "synthetic", "n_tracks": tracks, "frames": frames, "points": points,
              "test_seeds": test_seeds, "tune_seed": tune_seed, "seed": int(seed),
              "units": "normalised coordinates (x: fraction of a 640-pixel frame width); *_px = x 640",
              **origin(commit, command)}
    out_path = Path(out_dir) / (PROTOCOL if split == "test" else f"{PROTOCOL}-validation")
    results, best = _results(rows, common, options, tuned)
    files = [write_json(out_path / f"{m}.json", r) for m, r in results.items()]
    files.append(plot_trajectory(out_path / "trajectory.png", *plot_data, best))
    files.append(write_landmarks_report(out_path, results, tuned, best))
    say(f"{PROTOCOL} ({tracks} tracks) done in {time.perf_counter() - run_start:.0f} s; results in {out_path}")
    summary = {"dir": str(out_path), "n_tracks": tracks,
               **{m: {"rmse_px": r["rmse_px"], "rmse_outlier_frames_px": r["rmse_outlier_frames_px"],
                      "seconds_per_track": r["seconds_per_track"]} for m, r in results.items()}}
    return {"protocol": PROTOCOL, "dir": str(out_path), "summary": summary, "results": results,
            "files": [str(f) for f in files]}


def _tune_smoothers(names: list[str], options: dict[str, dict], tune_seed: int, frames: int, points: int,
                    say) -> dict[str, dict]:
    """Grid-search the parameters of each smoother given no options on the track of seed ``tune_seed``;
    put them in ``options`` and return method -> {params, tune_rmse, tune_seconds, grid}."""
    tn, tc, _ = synth_track(tune_seed, frames, points)
    tuned: dict[str, dict] = {}
    for m in names:
        if m in BASELINES and not options.get(m):
            t0 = time.perf_counter()
            params, err = smoothers.tune(m, tn, tc)
            tuned[m] = {"params": params, "tune_rmse": err, "tune_seconds": time.perf_counter() - t0,
                        "grid": smoothers.GRIDS[m]}
            options[m] = dict(params)
            say(f"tuned {m} on seed {tune_seed}: {params} (RMSE {err * PX:.3f} px)")
    return tuned


def _run_tracks(names: list[str], options: dict[str, dict], test_seeds: list[int], frames: int, points: int,
                say) -> tuple[dict[str, list[dict]], tuple]:
    """Run every method on every test track. Returns the per-track rows of each method (``noisy`` first)
    and (noisy, clean, info, outputs) of the first track, for the plot."""
    rows: dict[str, list[dict]] = {m: [] for m in ["noisy", *names]}
    plot_data = None
    for i, s in enumerate(test_seeds):
        noisy, clean, info = synth_track(s, frames, points)
        gaps = {"missing_frames": len(info["missing_frames"]), "outlier_frames": len(info["outlier_frames"]),
                "missing_values": int(np.isnan(noisy).sum())}
        rows["noisy"].append({"seed": s, "sse": _scores(clean, noisy, info), "gaps": gaps})
        line = [f"[{i + 1}/{len(test_seeds)}] seed {s}: noisy {_pooled(rows['noisy'][-1:], 'all') * PX:.3f} px"]
        outputs = {}
        for m in names:
            out, details = api.run_sequence_method(noisy, m, seed=s, **options.get(m, {}))
            row = {"seed": s, "sse": _scores(clean, out, info), "seconds": details["seconds"], "gaps": gaps}
            if "self2self" in details:
                fit = details["self2self"]
                row.update(steps=fit["steps"], fit_seconds=fit["fit_seconds"], config=fit["config"],
                           detected_outlier_frames=len(fit["outlier_frames"]),
                           detected_true_outliers=len(set(fit["outlier_frames"]) & set(info["outlier_frames"])))
            row["rmse"] = _pooled([row], "all")
            rows[m].append(row)
            outputs[m] = out
            line.append(f"{m} {row['rmse'] * PX:.3f} px {details['seconds']:.1f} s")
        if i == 0:
            plot_data = (noisy, clean, info, outputs)
        say(", ".join(line))
    return rows, plot_data


def _results(rows: dict[str, list[dict]], common: dict, options: dict[str, dict],
             tuned: dict[str, dict]) -> tuple[dict[str, dict], str]:
    """Each method's result (pooled RMSEs, gaps, settings, per-track rows) and the best tuned smoother."""
    results: dict[str, dict] = {}
    for m, rs in rows.items():
        res = {"method": m, **common}
        for g in ("all", "outlier_frames", "missing_frames", "other_frames"):
            key = "rmse" if g == "all" else f"rmse_{g}"
            res[key] = _pooled(rs, g)
            res[key + "_px"] = None if res[key] is None else res[key] * PX
        res["gaps"] = {k: sum(r["gaps"][k] for r in rs) for k in rs[0]["gaps"]}
        if m != "noisy":
            res["seconds_per_track"] = float(np.mean([r["seconds"] for r in rs]))
            res["options"] = rs[0].get("config", options.get(m, {}))
            if "detected_outlier_frames" in rs[0]:
                res["outlier_detection"] = {"flagged": sum(r["detected_outlier_frames"] for r in rs),
                                            "true_outliers_flagged": sum(r["detected_true_outliers"] for r in rs)}
            if m in tuned:
                res["tuning"] = tuned[m]
        else:
            res["seconds_per_track"] = None
            res["note"] = "the noisy input itself; missing values are left out of its RMSE"
        res["per_track"] = [{k: v for k, v in r.items() if k not in ("sse", "config")} | {"rmse": _pooled([r], "all")}
                            for r in rs]
        results[m] = res
    best = min(BASELINES, key=lambda b: results[b]["rmse"] if b in results else np.inf)
    for m, res in results.items():
        if m not in ("noisy", *BASELINES) and best in results:
            res["vs_best_smoother"] = {"smoother": best, "rmse_reduction": 1 - res["rmse"] / results[best]["rmse"]}
    return results, best


def plot_trajectory(path: Path, noisy, clean, info, outputs: dict[str, np.ndarray], best: str,
                    point: int | None = None, coord: int = 1) -> Path:
    """PNG: one point's coordinate over time (noisy, truth, each method) and the per-frame error."""
    import matplotlib  # the file backend is chosen here, not when the package is imported

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if point is None:  # the point that moves most (a lip or jaw point on the synthetic face)
        point = int(np.nanargmax(np.nanstd(np.diff(clean[..., coord], axis=0), axis=0)))
    t = np.arange(clean.shape[0])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), gridspec_kw={"height_ratios": [3, 2]})
    centre = info["missing_frames"][0] if info["missing_frames"] else clean.shape[0] // 2
    lo = max(0, min(centre - 120, clean.shape[0] - 240))
    window = slice(lo, lo + 240)  # the top panel zooms on 240 frames around the first gap
    tw = t[window]
    ax1.plot(tw, noisy[window, point, coord] * PX, ".", ms=3, color="0.6", label="noisy")
    ax1.plot(tw, clean[window, point, coord] * PX, "-", lw=1.4, color="k", label="truth")
    shown = [m for m in outputs if m not in BASELINES] + [best]
    palette = ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:brown", "tab:pink"]
    colour = {m: palette[i % len(palette)] for i, m in enumerate(outputs)}
    for m in shown:
        ax1.plot(tw, outputs[m][window, point, coord] * PX, "-", lw=1.0, color=colour[m], label=m)
    for ax in (ax1, ax2):
        for f in info["outlier_frames"]:
            ax.axvline(f, color="tab:purple", alpha=0.25, lw=1)
        for f in info["missing_frames"]:
            ax.axvspan(f - 0.5, f + 0.5, color="gold", alpha=0.3, lw=0)
    ax1.set_xlim(tw[0], tw[-1])
    ax1.set_xlabel("frame")
    ax1.set_ylabel(f"point {point} {'xyz'[coord]} (px)")
    ax1.set_title(f"landmarks-synth seed {info['seed']}: purple lines = outlier frames, yellow = missing frames")
    ax1.legend(loc="upper right", fontsize=8, ncol=len(shown) + 2)
    for m in ["noisy", *outputs]:
        arr = noisy if m == "noisy" else outputs[m]
        ax2.semilogy(t, per_frame_error(clean, arr) * PX, lw=0.8, color=colour.get(m, "0.6"), label=m)
    ax2.set_ylabel("per-frame RMSE (px)")
    ax2.set_xlabel("frame")
    ax2.legend(loc="upper right", fontsize=8, ncol=len(outputs) + 1)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))
    return path


def write_landmarks_report(out_path: Path, results: dict[str, dict], tuned: dict[str, dict], best: str) -> Path:
    """``report.md``: the scores table, the settings and the plot."""
    def f(x, spec=".3f"):
        return "–" if x is None else format(x, spec)

    any_r = next(iter(results.values()))
    lines = [f"# {PROTOCOL}", "",
             f"{any_r['n_tracks']} synthetic face-landmark tracks ({any_r['frames']} frames x {any_r['points']} "
             f"points x 3 coords; seeds {', '.join(map(str, any_r['test_seeds']))}), made by "
             "`selfdenoise.sequences.landmarks.synth_track`. "
             f"The smoothers were tuned by grid search on a separate track (seed {any_r['tune_seed']}). "
             "RMSE in pixels of the 640-pixel frame width, pooled over all values of all tracks.", "",
             "| method | RMSE (px) | outlier frames | missing frames | other frames | s / track | settings |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for m, r in results.items():
        settings = ", ".join(f"{k}={v}" for k, v in (r.get("options") or {}).items())
        if m in tuned:
            settings = f"tuned: {settings}"
        lines.append(f"| {m} | {f(r['rmse_px'])} | {f(r['rmse_outlier_frames_px'])} | "
                     f"{f(r['rmse_missing_frames_px'])} | {f(r['rmse_other_frames_px'])} | "
                     f"{f(r['seconds_per_track'], '.2f')} | {settings or 'defaults'} |")
    lines.append("")
    for m, r in results.items():
        if "vs_best_smoother" in r:
            v = r["vs_best_smoother"]
            lines.append(f"- {m}: RMSE {100 * v['rmse_reduction']:.0f} % below the best tuned smoother "
                         f"({v['smoother']}).")
        if "outlier_detection" in r:
            d = r["outlier_detection"]
            lines.append(f"- {m} flagged {d['flagged']} frames as outliers (treated as gaps), "
                         f"{d['true_outliers_flagged']} of them true outlier frames.")
    g = results["noisy"]["gaps"]
    lines += [f"- Gaps in the inputs: {g['missing_frames']} missing frames ({g['missing_values']} values), "
              f"{g['outlier_frames']} outlier frames in all; every method fills the gaps.",
              "- The noisy row leaves the missing values out (there is nothing to score).",
              "- self2self treats the frames that `sequences.find_outlier_frames` flags as gaps and fills gaps "
              "with a cubic spline through its denoised frames; the smoothers interpolate gaps linearly, and "
              "whether they use the same outlier-frame rejection (`outlier_threshold=5.0`) is one of their "
              "tuned parameters.",
              f"- Machine: {any_r['device']}; commit {any_r['commit']}; {any_r['date']}.",
              f"- Command: `{any_r['command']}`", "",
              "![one point over time and the per-frame error](trajectory.png)", ""]
    path = out_path / "report.md"
    text = "\n".join(lines)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path
