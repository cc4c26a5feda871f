"""Train a zoo model under the protocol v2 rules, measure it, and ship it with its record.

    PYTHONPATH=src python3 benchmarks/train_zoo.py fluorescence --data ../shared/data --minutes 15

``fluorescence``: ``ne2ne`` (the fast recipe) trained by ``selfdenoise train`` on noisy frames only: the W2S
validation fields of view 001-007 (widefield, three wavelengths each) and the three raw frames of
``microscopy_raw`` (PN2V Convallaria and mouse, EMCCD; the Noise2Void example frame). Validation: W2S fields
008-010 (never trained on), each noisy frame against its 400-frame average, scale-invariant PSNR, with and
without the inference options W2S validation chose for ``ne2ne`` (one Wiener pass through the fitted VST,
``benchmarks/selection/w2s-widefield-ne2ne-refine_vst.json``), which the zoo entry applies when the model is
loaded. Held-out figures, reported and used for nothing: the ``w2s-widefield`` test frames (every 3rd, as its
runs score them) and ``fmd-confocal`` (a confocal microscope the model never saw).

Writes the model to ``src/selfdenoise/weights/zoo/<name>.safetensors``, its entry to
``src/selfdenoise/weights/zoo/zoo.json`` and the measurements to ``benchmarks/results/zoo-<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from large_photos import timed

from selfdenoise import api, zoo
from selfdenoise.bench import write_json
from selfdenoise.bench.protocols import PROTOCOLS, find_test_images, test_pair
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.core.io import atomic_write
from selfdenoise.core.metrics import evaluate_pair

ROOT = Path(__file__).resolve().parent.parent
TRAIN_FIELDS, VALIDATION_FIELDS = [f"{k:03d}" for k in range(1, 8)], [f"{k:03d}" for k in range(8, 11)]
#: the inference options W2S validation chose for ne2ne (refinement), applied when the zoo model is loaded
OPTIONS = {"refine": 1, "refine_vst": "auto"}
MODELS = {
    "fluorescence": {
        "method": "ne2ne",
        "summary": "fluorescence microscopy frames (widefield and EMCCD, Poisson-Gaussian noise), gray; one "
                   "Wiener pass through the fitted VST",
        "data_terms": "W2S (Zhou et al. 2020): research use; PN2V / Noise2Void example frames (Krull et al.): "
                      "research use. Check them before reusing the weights.",
    },
}


def training_files(data: Path) -> list[Path]:
    w2s = sorted(p for p in (data / "w2s_widefield" / "noisy").glob("*.png") if p.name[:3] in TRAIN_FIELDS)
    return w2s + sorted((data / "microscopy_raw").glob("*.tif"))


def scored(model, protocol: str, data: Path, split: str, fields=None, every: int = 1, options=None) -> dict:
    """Mean scale-invariant PSNR of the model on a protocol's split (optionally some W2S fields)."""
    proto = PROTOCOLS[protocol]
    ts = proto.test_set(None, split)
    items = [i for i in find_test_images(data, ts) if fields is None or i.name[:3] in fields][::every]
    rows, t = [], time.perf_counter()
    for item in items:
        clean, noisy = test_pair(ts, item, proto.seed)
        out = model.denoise(noisy[..., 0], **(options or {}))
        rows.append({"name": item.name, "psnr": evaluate_pair(clean[..., 0], out, ts.metric)["psnr"],
                     "noisy_psnr": evaluate_pair(clean[..., 0], noisy[..., 0], ts.metric)["psnr"]})
    return {"protocol": protocol, "split": split, "images": len(rows), "psnr": float(np.mean([r["psnr"] for r in rows])),
            "noisy_psnr": float(np.mean([r["noisy_psnr"] for r in rows])),
            "seconds_per_image": (time.perf_counter() - t) / max(1, len(rows)), "per_image": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", choices=sorted(MODELS))
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    spec = MODELS[args.name]
    files = training_files(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "train"
        folder.mkdir()
        for f in files:
            (folder / str(f.relative_to(args.data)).replace("/", "-")).symlink_to(f.resolve())
        model_path = Path(tmp) / f"{args.name}.safetensors"
        cmd = [sys.executable, "-m", "selfdenoise", "train", "-m", spec["method"], "--data", str(folder), "-o",
               str(model_path), "--minutes", f"{args.minutes:g}", "--seed", str(args.seed), "--device", "cpu", "-q"]
        training = timed(cmd)
        print("trained", training, flush=True)
        model = api.load_model(model_path)
        validation = {"with_options": scored(model, "w2s-widefield", args.data, "validation", VALIDATION_FIELDS,
                                             options=OPTIONS),
                      "network_only": scored(model, "w2s-widefield", args.data, "validation", VALIDATION_FIELDS)}
        print("validation", {k: round(v["psnr"], 2) for k, v in validation.items()}, flush=True)
        held_out = [scored(model, "w2s-widefield", args.data, "test", every=3, options=OPTIONS),
                    scored(model, "fmd-confocal", args.data, "test", options=OPTIONS)]
        print("held out", [(h["protocol"], round(h["psnr"], 2)) for h in held_out], flush=True)
        zoo.ZOO_DIR.mkdir(parents=True, exist_ok=True)
        target = zoo.ZOO_DIR / f"{args.name}.safetensors"
        atomic_write(target, lambda part: shutil.copyfile(model_path, part))
    command = shlex.join(["selfdenoise", "train", "-m", spec["method"], "--data", "FOLDER_OF_THE_DATA_FILES", "-o",
                          target.name, *cmd[cmd.index("--minutes"):]])
    entry = {"method": spec["method"], "channels": model.channels, "file": target.name, "summary": spec["summary"],
             "options": OPTIONS, "data": [str(f.relative_to(args.data)) for f in files],
             "data_terms": spec["data_terms"], "seed": args.seed, "command": command,
             "train_seconds": training["seconds"], "device": "cpu: 2 cores",
             "validation": {k: {"psnr": round(v["psnr"], 3), "images": v["images"]} for k, v in validation.items()},
             "validation_split": "w2s-widefield validation fields " + ", ".join(VALIDATION_FIELDS)
                                 + " (noisy frames against their 400-frame averages, scale-invariant PSNR)",
             "held_out": {h["protocol"]: {"psnr": round(h["psnr"], 3), "images": h["images"],
                                          "seconds_per_image": round(h["seconds_per_image"], 2)} for h in held_out},
             "made_by": shlex.join(["python3", *sys.argv]), "commit": commit}
    manifest = zoo.entries()
    manifest[args.name] = entry
    atomic_write(zoo.MANIFEST, lambda part: Path(part).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n"))
    write_json(ROOT / "benchmarks" / "results" / f"zoo-{args.name}.json",
               {"what": f"zoo model {args.name}: training, validation and held-out figures", "entry": entry,
                "validation": validation, "held_out": held_out, "train": training,
                **origin(commit, shlex.join(["python3", *sys.argv]))})
    print("->", target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
