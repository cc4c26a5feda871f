"""PSNR and time of `selfdenoise denoise --quality fast|balanced|best` on real photos and Kodak.

    PYTHONPATH=src python3 benchmarks/quality_presets.py --data ../shared/data

Each preset of the default method (zero-shot) runs through the benchmark runner on the test splits of
real-polyu (82 photos, real camera noise), real-nam (20 patches, real camera noise) and Kodak (gauss25-color,
sigma 25; every ``--kodak-every``-th image), with NLM in the same run (the first preset's). BM3D's scores and
seconds on the same images come from the protocol's committed result (``benchmarks/results/<protocol>/
bm3d.json``, its commit recorded), as it takes longer than the three presets together. Run it alone on the
machine; a killed run resumes where it stopped (the runner's journal, in ``--work``). Writes
``benchmarks/results/quality-presets.json`` and ``quality-presets.md``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from selfdenoise.bench import run_protocol, write_json
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ("fast", "balanced", "best")
#: (protocol, test set, every n-th image)
SETS = (("real-polyu", "polyu", 1), ("real-nam", "nam", 1), ("gauss25-color", "kodak24", None))


def summary(per_image: list[dict], names: list[str]) -> dict:
    """Mean PSNR/SSIM and seconds per image over ``names`` (in that order)."""
    rows = {r["name"]: r for r in per_image}
    missing = [n for n in names if n not in rows]
    if missing:
        raise RuntimeError(f"no score for {', '.join(missing[:3])}")
    pick = lambda key: float(np.mean([rows[n][key] for n in names]))
    return {"psnr": round(pick("psnr"), 3), "ssim": round(pick("ssim"), 4), "seconds_per_image": round(pick("seconds"), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--kodak-every", type=int, default=2, help="every n-th Kodak image (default 2: 12 images)")
    ap.add_argument("--protocols", default=",".join(t[0] for t in SETS), help="a subset of the test sets, by protocol")
    ap.add_argument("--work", type=Path, default=Path("/tmp/selfdenoise-quality-presets"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "quality-presets.json")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    table = []
    for protocol, dataset, every in (t for t in SETS if t[0] in args.protocols.split(",")):
        every = every or args.kodak_every
        bm3d = json.loads((ROOT / "benchmarks" / "results" / protocol / "bm3d.json").read_text())
        rows = {}
        for preset in PRESETS:
            methods = ["zero-shot"] + (["nlm"] if preset == PRESETS[0] else [])
            run = run_protocol(protocol, args.data, methods, out_dir=args.work / preset, every=every, dataset=dataset,
                               baselines=False, method_options={"zero-shot": {"quality": preset}}, progress=False,
                               command=f"quality preset {preset}")
            if run["failed"]:
                raise RuntimeError(f"{protocol} {preset}: {run['failed']}")
            names = [r["name"] for r in run["results"]["zero-shot"]["per_image"]]
            rows[f"zero-shot --quality {preset}"] = summary(run["results"]["zero-shot"]["per_image"], names)
            if preset == PRESETS[0]:
                rows["nlm"] = summary(run["results"]["nlm"]["per_image"], names)
                rows["noisy"] = {"psnr": round(run["noisy"]["psnr"], 3), "ssim": round(run["noisy"]["ssim"], 4)}
            print(protocol, preset, rows[f"zero-shot --quality {preset}"], flush=True)
        rows["bm3d"] = {**summary(bm3d["per_image"], names), "commit": bm3d["commit"]}
        table.append({"protocol": protocol, "dataset": dataset, "every": every, "n_images": len(names), "rows": rows})
    record = {"what": "PSNR (dB) and seconds per image of the default method's quality presets, 2 CPU cores",
              "split": "test", "sets": table,
              **{f"{t['protocol']}_{p}_psnr": t["rows"][f"zero-shot --quality {p}"]["psnr"] for t in table for p in PRESETS},
              **{f"{t['protocol']}_{p}_seconds": t["rows"][f"zero-shot --quality {p}"]["seconds_per_image"]
                 for t in table for p in PRESETS},
              **origin(commit, shlex.join(["python3", *sys.argv]))}
    write_json(args.out, record)
    args.out.with_suffix(".md").write_text(report(record))
    print("->", args.out)
    return 0


def report(record: dict) -> str:
    """The table as Markdown: one block per test set, PSNR / SSIM / seconds per image."""
    lines = [f"# Quality presets (commit {record['commit'][:7]}, `{record['command']}`)", "",
             "PSNR (dB) / SSIM / seconds per image on 2 CPU cores. BM3D: from the protocol's committed run "
             "(its commit below), on the same images.", ""]
    for t in record["sets"]:
        lines += [f"## {t['protocol']} ({t['dataset']}, {t['n_images']} images"
                  + (f", every {t['every']}th" if t["every"] > 1 else "") + ")", "",
                  "| method | PSNR | SSIM | s/image |", "|---|---|---|---|"]
        for name, r in t["rows"].items():
            secs = f"{r['seconds_per_image']:.2f}" if "seconds_per_image" in r else ""
            note = f" (commit {r['commit'][:7]})" if "commit" in r else ""
            lines.append(f"| {name}{note} | {r['psnr']:.2f} | {r['ssim']:.4f} | {secs} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
