"""Render the README's results table from the committed benchmark JSON files.

    python benchmarks/results_table.py            # print the table
    python benchmarks/results_table.py --write    # replace it between the markers in README.md
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"
ORDER = {"noisy": 0, "bm3d": 1, "nlm": 2}


def result_folders() -> list[Path]:
    """Every folder under benchmarks/results holding result JSON files (one run each)."""
    return sorted({p.parent for p in (ROOT / "benchmarks" / "results").rglob("*.json")})


def rows() -> list[str]:
    out = ["| protocol | test set | images | method, options | PSNR (dB) | SSIM | training | s / image | vs BM3D | machine, commit |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for folder in result_folders():
        results = [json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))]
        results = [r for r in results if "psnr" in r and "method" in r and "per_image" in r]
        bm3d = next((r["seconds_per_image"] for r in results if r["method"] == "bm3d"), None)
        for r in sorted(results, key=lambda r: (ORDER.get(r["method"], 9), r["method"])):
            s = r.get("seconds_per_image")
            ratio = "" if not (bm3d and s and r["method"] != "bm3d") else (
                f"{bm3d / s:.1f}x faster" if s <= bm3d else f"{s / bm3d:.1f}x slower")
            cores = r.get("device", "").split(",")[0]
            t = r.get("train_seconds")
            training = "" if not t else f"{t / 60:.0f} min, {r['training']['device'] if 'training' in r else ''}"
            opts = r.get("options") or {}
            method = r["method"] + "".join(f", {k}={v:g}" if isinstance(v, float) else f", {k}={v}"
                                           for k, v in sorted(opts.items()))
            out.append(f"| {r['protocol']} | {r['dataset']} | {r['n_images']} | {method} | {r['psnr']:.2f} | "
                       f"{r['ssim']:.4f} | {training} | {'' if s is None else f'{s:.2f}'} | {ratio} | "
                       f"{cores}, {str(r.get('commit') or '')[:8]} |")
    return out


def sequence_rows() -> list[str]:
    """The sequence benchmarks (results with ``rmse`` and ``per_track``, e.g. landmarks-synth)."""
    out = ["| protocol | tracks | method | RMSE (px) | RMSE on outlier frames (px) | s / track | machine, commit |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for folder in result_folders():
        results = [json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))]
        for r in sorted((r for r in results if "rmse" in r and "per_track" in r),
                        key=lambda r: (r["method"] != "noisy", r["rmse"])):
            s, o = r.get("seconds_per_track"), r.get("rmse_outlier_frames_px")
            out.append(f"| {r['protocol']} | {r['n_tracks']} | {r['method']} | {r['rmse_px']:.3f} | "
                       f"{'' if o is None else f'{o:.3f}'} | {'' if s is None else f'{s:.2f}'} | "
                       f"{r.get('device', '').split(',')[0]}, {str(r.get('commit') or '')[:8]} |")
    return out if len(out) > 2 else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="update README.md in place")
    table = "\n".join(rows() + ([""] + sequence_rows() if sequence_rows() else []))
    if not ap.parse_args().write:
        print(table)
        return
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    main()
