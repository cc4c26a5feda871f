"""Train a zoo model under the protocol v2 rules, measure it, and ship it with its record.

    PYTHONPATH=src python3 benchmarks/train_zoo.py NAME --data ../shared/data --minutes 15

Every model is trained by ``selfdenoise train`` on noisy images only, validated on a protocol's validation
split (never trained on) with and without the inference options the entry applies when it is loaded, and
scored on held-out test splits that are reported and used for nothing. Synthetic noise is drawn once per
image and realisation with recorded seeds (``protocols.realisation_seed``, the protocols' own training seeds), clipped to
[0, 1] and written as 16-bit TIFF: the files a camera would give; the model never sees a clean image.

- ``fluorescence``: ``ne2ne`` on the W2S validation fields of view 001-007 (widefield, three wavelengths each)
  and the three raw frames of ``microscopy_raw`` (PN2V Convallaria and mouse, EMCCD; the Noise2Void example
  frame); validation: W2S fields 008-010; held out: the ``w2s-widefield`` test frames (every 3rd, as its runs
  score them) and ``fmd-confocal`` (a confocal microscope the model never saw). Options: one Wiener pass
  through the fitted VST (``benchmarks/selection/w2s-widefield-ne2ne-refine_vst.json``).
- ``gauss-color`` / ``gauss-gray``: blind Gaussian noise, ``n2n`` on two realisations of each training image
  of ``gauss25-color`` (BSD300 test, colour) / ``gauss25-gray`` (BSD400, gray), each image with its own
  sigma drawn from U[5, 50]; validation: the protocol's (McMaster / Set12, sigma 25); held out: its test
  images at sigma 25 (and Kodak with sigma ~ U[5, 50] for colour).
- ``gauss-color-15-35``: ``gauss-color`` trained further (``--init zoo:gauss-color``) on the same images with
  sigma drawn from U[15, 35]: the zero-shot prior where the estimated noise level falls in that band; validation
  and held out as ``gauss-color``'s.
- ``self2self-color``: ``self2self`` with its own loss (Bernoulli-masked crops, error on the dropped pixels) on one
  realisation of each ``gauss-color`` training image; validation and held out as ``gauss-color``'s (sigma 25).
  Crops of 128 pixels: on 64-pixel crops the network's bottom is 1x1 and a long training comes to depend on the
  crop's border (``methods/self2self.py``); the shipped first stage was trained on 64.
- ``ne2ne-color``: ``ne2ne`` (Neighbor2Neighbor's sub-sampled pairs) on that same single realisation of each
  ``gauss-color`` training image: the start for ``ne2ne`` where only one noisy photo of a scene exists;
  validation and held out as ``gauss-color``'s. Not shipped: 55 minutes gave 25.34 dB on McMaster (the
  network lets a quarter to a half of the noise through, ``benchmarks/noise_share.py``; record in
  ``benchmarks/results/history/v2-earlier-settings/zoo-ne2ne-color-5e4debb/``).
- ``poisson-color``: ``n2n`` likewise with Poisson noise of 5-50 photons at full scale per image; validation
  and held out: ``poisson30-color``'s.
- ``real-camera``: ``asym-mask`` on PolyU's 100 noisy photos (real camera noise; the protocol is transductive);
  validation: PolyU's 18 validation pairs; held out: PolyU test (1 in 3) and Nam's patches (cameras it never saw).
  Trained 10 minutes, the length validation chose: 15 minutes gave 36.12 dB, no better than the noisy photos
  (the blind-spot network learns the correlated noise in longer runs; record in
  ``benchmarks/results/history/v2-earlier-settings/zoo-real-camera-afc730a/``), 10 minutes 37.48.
- ``oct``: ``n2n`` on the repeated B-scans of the ``oct-duke`` training eyes 01-07 (the mean of the other
  frames as target, mirrors only: the options its validation chose); validation eyes 08-09; held out 10-18.

``--more``: train the shipped model further (``selfdenoise train --init`` from it, a fresh schedule of ``--minutes``
on the same files and noise): its entry keeps every stage's command and time, and ``train_seconds`` is their sum.
``--lr``: the stage's peak learning rate (the recipe's when not given).
``--remeasure``: score the shipped model again, untrained, after a change to how its method denoises (its stages
stay; ``made_by`` and ``commit`` name the measurement).

Writes the model to ``src/selfdenoise/weights/zoo/<name>.safetensors``, its entry to
``src/selfdenoise/weights/zoo/zoo.json`` and the measurements to ``benchmarks/results/zoo-<name>.json``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from large_photos import timed

from selfdenoise import api, zoo
from selfdenoise.bench import write_json
from selfdenoise.bench.protocols import PROTOCOLS, TRAINING_NOISE_SEED, find_test_images, realisation_seed, test_pair
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.core.io import ImageInfo, atomic_write, read_image, write_image
from selfdenoise.core.metrics import evaluate_pair
from selfdenoise.core.noise import add_noise

ROOT = Path(__file__).resolve().parent.parent
#: the inference options W2S validation chose for ne2ne (refinement), applied when the zoo model is loaded
VST_REFINE = {"refine": 1, "refine_vst": "auto"}


@dataclass(frozen=True)
class Score:
    """A split a model is scored on: a protocol's split (a dataset of it), optionally some W2S fields of view,
    every ``every``-th image."""
    protocol: str
    split: str = "test"
    dataset: str | None = None
    fields: tuple[str, ...] | None = None
    every: int = 1

    @property
    def label(self) -> str:
        return self.protocol + (f"-{self.dataset}" if self.dataset else "") + ("" if self.split == "test" else
                                                                             f"-{self.split}")


@dataclass(frozen=True)
class Spec:
    """One zoo model: the method, what it is for, its training files (``pattern`` globs under the data folder)
    with their noise (None: real noisy files; else drawn once, ``realisations`` each, as a/ b/ pairs for two),
    ``groups``: the files of one folder are repeated frames of a scene (a sub-folder each), the training
    options (``selfdenoise train -p``), the inference options, validation and held-out splits, and the zoo model
    the first stage starts from (``init``)."""
    method: str
    summary: str
    data_terms: str
    patterns: tuple[str, ...]
    validation: Score
    held_out: tuple[Score, ...]
    noise: str | None = None
    realisations: int = 1
    groups: bool = False
    train_options: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    init: str | None = None


_BSD = "BSD (Martin et al. 2001): research use. Check it before reusing the weights."
MODELS = {
    "fluorescence": Spec(
        "ne2ne", "fluorescence microscopy frames (widefield and EMCCD, Poisson-Gaussian noise), gray; one Wiener "
        "pass through the fitted VST",
        "W2S (Zhou et al. 2020): research use; PN2V / Noise2Void example frames (Krull et al.): research use. Check "
        "them before reusing the weights.",
        tuple(f"w2s_widefield/noisy/{k:03d}_*.png" for k in range(1, 8)) + ("microscopy_raw/*.tif",),
        Score("w2s-widefield", "validation", fields=tuple(f"{k:03d}" for k in range(8, 11))),
        (Score("w2s-widefield", every=3), Score("fmd-confocal")), options=VST_REFINE),
    "gauss-color": Spec(
        "n2n", "colour photos with white Gaussian noise of any level (trained on sigma 5-50, blind)", _BSD,
        ("bsd300_test/*.png",), Score("gauss25-color", "validation"),
        (Score("gauss25-color"), Score("gauss5-50-color", dataset="kodak24-5-50")), noise="gauss:5-50",
        realisations=2),
    "gauss-color-15-35": Spec(
        "n2n", "colour photos with white Gaussian noise of sigma 15-35 (blind within the band): zoo:gauss-color "
        "trained further on that band; the zero-shot prior where the estimated level falls in it", _BSD,
        ("bsd300_test/*.png",), Score("gauss25-color", "validation"),
        (Score("gauss25-color"), Score("gauss5-50-color", dataset="kodak24-5-50")), noise="gauss:15-35",
        realisations=2, init="gauss-color"),
    "gauss-gray": Spec(
        "n2n", "gray images with white Gaussian noise of any level (trained on sigma 5-50, blind)", _BSD,
        ("bsd400_train/*.png",), Score("gauss25-gray", "validation"), (Score("gauss25-gray"),), noise="gauss:5-50",
        realisations=2),
    "self2self-color": Spec(
        "self2self", "colour photos with white Gaussian noise of any level (trained on sigma 5-50, blind): Self2Self's "
        "prior, denoising by its dropout ensemble alone or starting a fit to one photo (denoise -m self2self --init)",
        _BSD, ("bsd300_test/*.png",), Score("gauss25-color", "validation"), (Score("gauss25-color"),),
        noise="gauss:5-50", train_options={"crop": 128}),
    "ne2ne-color": Spec(
        "ne2ne", "colour photos with white Gaussian noise of any level (trained on sigma 5-50, blind), learnt from one "
        "noisy realisation per photo (Neighbor2Neighbor's sub-sampled pairs)", _BSD, ("bsd300_test/*.png",),
        Score("gauss25-color", "validation"), (Score("gauss25-color"),), noise="gauss:5-50"),
    "poisson-color": Spec(
        "n2n", "colour photos with Poisson (shot) noise of any level (trained on 5-50 photons at full scale, blind)",
        _BSD, ("bsd300_test/*.png",), Score("poisson30-color", "validation"), (Score("poisson30-color"),),
        noise="poisson:5-50", realisations=2),
    "real-camera": Spec(
        "asym-mask", "colour photos with real camera noise (spatially correlated after demosaicing, JPEG), learnt from "
        "PolyU's 100 noisy photos of five cameras; the asymmetric-mask blind-spot network",
        "PolyU real-world noisy images (Xu et al. 2018): non-commercial use only (its License.txt). Check it before "
        "reusing the weights.",
        ("polyu_real100/*_real.JPG",), Score("real-polyu", "validation"), (Score("real-polyu", every=3), Score("real-nam"))),
    "oct": Spec(
        "n2n", "retinal OCT B-scans (speckle), gray; trained on repeated B-scans of one scanner",
        "Duke SD-OCT (Fang et al. 2013): research use. Check it before reusing the weights.",
        tuple(f"oct_duke_fang2013/0{k}/{f}.tif" for k in range(1, 8) for f in ("test", "1", "2", "3", "4")),
        Score("oct-duke", "validation"), (Score("oct-duke"),), groups=True,
        train_options={"target_frames": 0, "augment": "flips"}),
}


def training_files(data: Path, spec: Spec) -> list[Path]:
    return [f for pattern in spec.patterns for f in sorted(data.glob(pattern))]


def noise_seeds(spec: Spec, files: list[Path], data: Path) -> list[dict]:
    """The seed of each file's noisy realisations (none for real noisy files)."""
    if spec.noise is None:
        return []
    return [{"file": str(f.relative_to(data)), "realisation": r, "seed": realisation_seed(TRAINING_NOISE_SEED, r, i)}
            for i, f in enumerate(files) for r in range(spec.realisations)]


def write_training_folder(spec: Spec, files: list[Path], data: Path, folder: Path) -> None:
    """The folder ``selfdenoise train`` reads: links to real noisy files (a sub-folder per scene with ``groups``),
    or each file's noisy realisations (a/ and b/ for pairs), drawn with ``noise_seeds``."""
    if spec.noise is None:
        for f in files:
            flat = str(f.relative_to(data)).replace("/", "-")
            target = folder / f.parent.name / f.name if spec.groups else folder / flat
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(f.resolve())
        return
    for s in noise_seeds(spec, files, data):
        clean, _ = read_image(data / s["file"])
        noisy = np.clip(add_noise(clean, spec.noise, seed=s["seed"]), 0.0, 1.0)
        name = Path(s["file"].replace("/", "-")).stem + ".tif"
        out = (folder / "ab"[s["realisation"]] if spec.realisations > 1 else folder) / name
        out.parent.mkdir(parents=True, exist_ok=True)
        write_image(out, noisy, ImageInfo(dtype="uint16", channels=noisy.shape[-1] if noisy.ndim == 3 else 1))


def train(spec: Spec, files: list[Path], args, model_path: Path) -> tuple[dict, str]:
    """Run ``selfdenoise train`` on the noisy folder; returns its timing and the command a user would type."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "train"
        folder.mkdir()
        write_training_folder(spec, files, args.data, folder)
        start = (["--init", str(model_path)] if args.more else ["--init", f"zoo:{spec.init}"] if spec.init else [])
        options = [a for k, v in spec.train_options.items() for a in ("-p", f"{k}={v}")]
        common = ["--minutes", f"{args.minutes:g}", "--seed", str(args.seed), "--device", "cpu", "-q",
                  *(["--lr", f"{args.lr:g}"] if args.lr else [])]
        training = timed([sys.executable, "-m", "selfdenoise", "train", "-m", spec.method, "--data", str(folder),
                          "-o", str(model_path), *common, "--log", str(Path(tmp) / "train.log.csv"),  # not beside the model
                          *start, *options])
    shown_start = [model_path.name if a == str(model_path) else a for a in start]
    return training, shlex.join(["selfdenoise", "train", "-m", spec.method, "--data", "FOLDER_OF_THE_DATA_FILES", "-o",
                                 model_path.name, *common, *shown_start, *options])


def scored(model, score: Score, data: Path, options=None) -> dict:
    """Mean PSNR of the model on a split (the protocol's metric)."""
    proto = PROTOCOLS[score.protocol]
    ts = proto.test_set(score.dataset, score.split)
    items = [i for i in find_test_images(data, ts) if score.fields is None or i.name[:3] in score.fields][::score.every]
    rows, t = [], time.perf_counter()
    for item in items:
        clean, noisy = test_pair(ts, item, proto.seed)
        if model.channels == 1:
            clean, noisy = clean[..., :1], noisy[..., :1]
        out = model.denoise(noisy, **(options or {}))
        rows.append({"name": item.name, "psnr": evaluate_pair(clean, out, ts.metric)["psnr"],
                     "noisy_psnr": evaluate_pair(clean, noisy, ts.metric)["psnr"]})
    return {"protocol": score.protocol, "dataset": ts.name, "split": score.split, "images": len(rows),
            "psnr": float(np.mean([r["psnr"] for r in rows])), "noisy_psnr": float(np.mean([r["noisy_psnr"] for r in rows])),
            "seconds_per_image": (time.perf_counter() - t) / max(1, len(rows)), "per_image": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", choices=sorted(MODELS))
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--more", action="store_true", help="continue training the shipped model (a new stage)")
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate of this stage (default: the recipe's)")
    ap.add_argument("--remeasure", action="store_true",
                    help="score the shipped model again without training (after a change to how it denoises)")
    args = ap.parse_args()
    if args.more and args.remeasure:
        ap.error("--more trains, --remeasure does not: give one of them")
    if args.remeasure and args.lr:
        ap.error("--lr is for a training stage; --remeasure trains nothing")
    commit = require_clean_tree(git_commit(), exploratory=False)
    spec = MODELS[args.name]
    files = training_files(args.data, spec)
    zoo.ZOO_DIR.mkdir(parents=True, exist_ok=True)
    model_path = zoo.ZOO_DIR / f"{args.name}.safetensors"  # written atomically when the training ends
    earlier = zoo.entries()[args.name] if args.more or args.remeasure else None
    single_stage = ("command", "train_seconds", "made_by", "commit")  # an entry of before stages were recorded
    stages = list(earlier.get("stages") or [{k: earlier[k] for k in single_stage}]) if earlier else []
    if args.remeasure:  # nothing trained: the stages, the command and the time are the shipped model's
        command, training = earlier["command"], {"seconds": earlier["train_seconds"]}
    else:
        training, command = train(spec, files, args, model_path)
        print("trained", training, flush=True)
        stages.append({"command": command, "train_seconds": training["seconds"],
                       "made_by": shlex.join(["python3", *sys.argv]), "commit": commit})
    model = api.load_model(model_path)
    validation = {"network_only": scored(model, spec.validation, args.data)}
    if spec.options:
        validation["with_options"] = scored(model, spec.validation, args.data, spec.options)
    print("validation", {k: round(v["psnr"], 2) for k, v in validation.items()}, flush=True)
    held_out = [scored(model, s, args.data, spec.options) for s in spec.held_out]
    print("held out", [(h["protocol"], h["dataset"], round(h["psnr"], 2)) for h in held_out], flush=True)
    entry = {"method": spec.method, "channels": model.channels, "file": model_path.name, "summary": spec.summary,
             "options": spec.options, "data": [str(f.relative_to(args.data)) for f in files],
             "noise": None if spec.noise is None else f"{spec.noise}, drawn once per image and realisation "
                                                      f"({spec.realisations}), seeds {TRAINING_NOISE_SEED} + realisation * "
                                                      "100000 + index, clipped to [0, 1], 16-bit TIFF",
             "data_terms": spec.data_terms, "seed": args.seed, "command": command,
             "train_seconds": round(sum(st["train_seconds"] for st in stages), 1), "stages": stages,
             **({"init": {"model": f"zoo:{spec.init}", "train_seconds": zoo.entries()[spec.init]["train_seconds"]}}
                if spec.init else {}),
             "device": "cpu: 2 cores",
             "validation": {k: {"psnr": round(v["psnr"], 3), "images": v["images"]} for k, v in validation.items()},
             "validation_split": f"{spec.validation.label} ({validation['network_only']['dataset']})",
             "held_out": {PROTOCOLS[h["protocol"]].test_set(s.dataset).name if s.dataset else h["protocol"]:
                          {"psnr": round(h["psnr"], 3), "images": h["images"],
                           "seconds_per_image": round(h["seconds_per_image"], 2)} for s, h in zip(spec.held_out, held_out)},
             "made_by": shlex.join(["python3", *sys.argv]), "commit": commit}
    manifest = zoo.entries()
    manifest[args.name] = entry
    atomic_write(zoo.MANIFEST, lambda part: Path(part).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n"))
    write_json(ROOT / "benchmarks" / "results" / f"zoo-{args.name}.json",
               {"what": f"zoo model {args.name}: training, validation and held-out figures", "entry": entry,
                "validation": validation, "held_out": held_out, "train": training,
                "noise_seeds": noise_seeds(spec, files, args.data),
                **origin(commit, shlex.join(["python3", *sys.argv]))})
    print("->", model_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
