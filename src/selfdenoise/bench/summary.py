"""The README's results table, generated from the current result files only.

``benchmarks/results/<protocol>/<method>.json`` is the current result of that (protocol, method) pair;
superseded runs live under ``benchmarks/results/history/`` and validation runs under
``benchmarks/selection/``, and neither reaches the table. Nor does a result marked ``exploratory`` or
made from a tree with uncommitted changes. Each protocol gets its own table with the noisy input, BM3D,
NLM and the peer tools beside our methods, their spread, and paired wins against BM3D and the best peer.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .protocols import PROTOCOLS

START, END = "<!-- results:start -->", "<!-- results:end -->"
#: rows first: the input itself, then the classical baselines, then the peers, then ours by PSNR
_FIRST = {"noisy": 0, "bm3d": 1, "nlm": 2}
#: a README link to a figure of a result file: [31.21 dB](benchmarks/results/gauss25-color/n2n.json#psnr)
FIGURE_LINK = re.compile(r"\[([^\]]*?)\]\((benchmarks/results/[^)#\s]+\.json)#([a-z0-9_]+)\)")


def current_results(root: Path) -> dict[str, list[dict]]:
    """Folder name -> the current results in it (``benchmarks/results/<folder>/*.json`` of committed,
    non-exploratory runs); ``history/`` is left out."""
    folders: dict[str, list[dict]] = {}
    for path in sorted((root / "benchmarks" / "results").glob("*/*.json")):
        if path.parent.name == "history":
            continue
        r = json.loads(path.read_text())
        if "method" not in r or r.get("exploratory") or r.get("failed") or str(r.get("commit") or "").endswith("-dirty"):
            continue
        folders.setdefault(path.parent.name, []).append(r)
    return folders


def _num(x, spec: str) -> str:
    return "" if x is None else format(x, spec)


def _commits(results: list[dict]) -> str:
    """The header's "commit C", or, when a protocol's methods ran from different commits, each with its methods."""
    by_commit: dict[str, list[str]] = {}
    for r in results:
        by_commit.setdefault(str(r.get("commit") or "")[:8], []).append(r["method"])
    if len(by_commit) == 1:
        return f"commit {next(iter(by_commit))}"
    return "commits " + ", ".join(f"{c} ({', '.join(m)})" for c, m in by_commit.items())


def _wins(w: dict | None) -> str:
    return "" if not w else f"{w['wins']}/{w['of']}"


def _image_table(name: str, results: list[dict]) -> list[str]:
    first = results[0]
    bm3d = next((r.get("seconds_per_image") for r in results if r["method"] == "bm3d"), None)
    order = sorted(results, key=lambda r: (_FIRST.get(r["method"], 3 if r.get("peer") else 4), -(r["psnr"] or 0)))
    every = f" (1 in {first['every']})" if (first.get("every") or 1) > 1 else ""
    lines = [f"**{name}** ({first['dataset']}, {first['n_images']} images{every}, {first.get('split', 'test')} split, "
             f"{first.get('metric', 'photo')} metrics, noise {first.get('noise')}; {_commits(results)}, "
             f"{first.get('device', '').split(',')[0]})", "",
             "| method | PSNR (dB) | sd | SSIM | wins vs BM3D | wins vs best peer | s / image | vs BM3D time | training |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in order:
        s = r.get("seconds_per_image")
        ratio = "" if not (bm3d and s and r["method"] != "bm3d") else (
            f"{bm3d / s:.1f}x faster" if s <= bm3d else f"{s / bm3d:.1f}x slower")
        wins = r.get("wins") or {}
        vs_bm3d = wins.get("bm3d")
        vs_peer = next((v for k, v in wins.items() if k != "bm3d"), None)
        label = r["method"] + (f" ({r['peer']})" if r.get("peer") else "")
        cells = [label, _num(r["psnr"], ".2f"), _num(r.get("psnr_sd"), ".2f"), _num(r["ssim"], ".4f"),
                 _wins(vs_bm3d), _wins(vs_peer), _num(s, ".2f"), ratio, _training(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _training(result: dict) -> str:
    """The training cell: minutes on the protocol's training set (and the model it started from; "transductive"
    when that set holds the noisy test images themselves), a peer's per-image budget (included in its seconds
    per image), or the model a fit to each image started from."""
    if result.get("peer"):
        budget = result.get("budget_seconds")
        return f"{budget:.0f} s on each image" if budget else ""
    t = result.get("train_seconds")
    init = (result.get("options") or {}).get("init")
    if not t:
        return f"fitted to each image from {init}" if init else ""
    proto = PROTOCOLS.get(result.get("protocol", ""))
    return (f"{t / 60:.0f} min" + (f" from {init}" if init else "")
            + (", transductive" if proto is not None and proto.transductive else ""))


def _sequence_table(name: str, results: list[dict]) -> list[str]:
    first = results[0]
    lines = [f"**{name}** ({first['n_tracks']} tracks, {first.get('split', 'test')} split; commit "
             f"{str(first.get('commit') or '')[:8]})", "",
             "| method | RMSE (px) | RMSE on outlier frames (px) | s / track |", "| --- | --- | --- | --- |"]
    for r in sorted(results, key=lambda r: (r["method"] != "noisy", r["rmse"])):
        lines.append(f"| {r['method']} | {r['rmse_px']:.3f} | {_num(r.get('rmse_outlier_frames_px'), '.3f')} | "
                     f"{_num(r.get('seconds_per_track'), '.2f')} |")
    return lines + [""]


def results_table(root: Path) -> str:
    """The README's results section between its markers: one table per current result folder."""
    lines: list[str] = []
    for name, results in current_results(root).items():
        if all("per_track" in r for r in results):
            lines += _sequence_table(name, results)
        elif all("per_image" in r and "psnr" in r for r in results):
            lines += _image_table(name, results)
    return "\n".join(lines).rstrip() + "\n" if lines else "No current results yet.\n"


def write_readme_table(readme: Path, root: Path) -> None:
    """Replace the text between the results markers of ``readme``."""
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{results_table(root)}{END}{tail}")


def readme_figures(readme: Path, root: Path) -> list[tuple[str, str, str, float | None]]:
    """Every figure the README's text cites from a result file: (link text, file, key, the file's value)."""
    out = []
    for text, path, key in FIGURE_LINK.findall(readme.read_text()):
        file = root / path
        value = json.loads(file.read_text()).get(key) if file.is_file() else None
        out.append((text, path, key, value))
    return out
