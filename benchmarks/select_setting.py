"""Select one setting of a method on a protocol's validation split, and record the decision.

    PYTHONPATH=src python3 benchmarks/select_setting.py single-image zero-shot steps 0,75,150,300 --data ../shared/data \
        --every 3 [-p refine=auto ...]
    PYTHONPATH=src python3 benchmarks/select_setting.py real-polyu asym-mask blend_window 3,7,15 --data ../shared/data \
        --train-minutes 10 --train-once
    PYTHONPATH=src python3 benchmarks/select_setting.py oct-duke n2n widths '48,96,144;64,128,192' \
        --data ../shared/data --train-minutes 8

Runs ``selfdenoise bench PROTOCOL --split validation`` once per value (baselines off, the other options
fixed by ``-p``), then writes ``benchmarks/selection/<protocol>-<method>-<setting>.json``: the validation
curve (mean PSNR, SSIM and seconds per image for each value), the rule, the chosen value, the command and
the commit. A setting used only at inference (a blend window, test-time flips) is compared on one model:
``--train-once`` trains the method once, with the other options, and gives every value that model.
The rule: the highest mean validation PSNR; a value within ``--tolerance`` dB of it that is at least
``FASTER`` times faster wins (a setting is not worth seconds it does not pay for; a smaller
difference in time is timing noise). Nothing here looks at a test image.
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from selfdenoise.bench import run_protocol, write_json
from selfdenoise.bench.provenance import git_commit, origin, require_clean_tree
from selfdenoise.core.params import parse_params, parse_values

ROOT = Path(__file__).resolve().parent.parent
FASTER = 1.2  # how much faster a value within the tolerance must be to win over the best one


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("protocol")
    ap.add_argument("method")
    ap.add_argument("setting")
    ap.add_argument("values", help="comma-separated values to try (semicolon-separated when a value is a tuple: "
                                   "'48,96,144;64,128,192')")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--tolerance", type=float, default=0.05, help="dB within the best that a faster value may lose")
    ap.add_argument("-p", "--param", dest="params", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--train-minutes", type=float, default=None, help="for methods trained on a data set")
    ap.add_argument("--train-once", action="store_true",
                    help="train once and try every value on that model (for settings used only at inference)")
    ap.add_argument("--keep-model", type=Path, default=None,
                    help="with --train-once: keep that model here (another selection can take it: -p model=FILE)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "selection")
    args = ap.parse_args()
    commit = require_clean_tree(git_commit(), exploratory=False)
    fixed = parse_params(args.params)
    train = {"minutes": args.train_minutes} if args.train_minutes else None
    curve = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.train_once:  # the model every value is tried on
            r = run_protocol(args.protocol, args.data, [args.method], out_dir=Path(tmp, "trained"), limit=1,
                             split="validation", baselines=False, progress=False,
                             method_options={args.method: dict(fixed)}, train=train)
            fixed["model"] = str(Path(r["dir"]) / f"{args.method}.sdm")
            if args.keep_model:
                args.keep_model.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(fixed["model"], args.keep_model)
        # the values run on that model: the model it started from (``init``) played its part in training
        applied = {k: v for k, v in fixed.items() if not (args.train_once and k == "init")}
        for i, value in enumerate(parse_values(args.values)):
            r = run_protocol(args.protocol, args.data, [args.method], out_dir=Path(tmp, f"value{i}"),
                             split="validation", every=args.every, limit=args.limit, baselines=False,
                             progress=False, method_options={args.method: {**applied, args.setting: value}},
                             train=None if "model" in fixed else train)
            if args.method not in r["results"]:
                errors = r["failed"].get(args.method) or [{"error": r["skipped"].get(args.method, "no result")}]
                sys.exit(f"error: {args.method} with {args.setting}={value}: {errors[0]['error']}")
            res = r["results"][args.method]
            curve.append({"value": value, "psnr": res["psnr"], "ssim": res["ssim"],
                          "seconds_per_image": res["seconds_per_image"], "n_images": res["n_images"],
                          "dataset": res["dataset"]})
            print(f"{args.setting}={value}: {res['psnr']:.3f} dB, {res['seconds_per_image']:.1f} s/image", flush=True)
    # how the one model every value ran on was trained (from its file), without its curve
    model_training = ({k: v for k, v in res.get("training", {}).items() if k != "curve"}
                      if "model" in fixed else None)
    if args.train_once:
        fixed.pop("model")
    top = max(curve, key=lambda c: c["psnr"])
    near = [c for c in curve if c["psnr"] >= top["psnr"] - args.tolerance
            and c["seconds_per_image"] * FASTER <= top["seconds_per_image"]]
    chosen = min(near, key=lambda c: c["seconds_per_image"]) if near else top
    record = {"protocol": args.protocol, "split": "validation", "dataset": curve[0]["dataset"], "method": args.method,
              "setting": args.setting, "fixed": fixed, "model_training": model_training, "curve": curve,
              "chosen": chosen["value"],
              "rule": f"highest mean validation PSNR; a value within {args.tolerance} dB of it and {FASTER:g}x "
                      "faster wins",
              **origin(commit, shlex.join(["python3", *sys.argv]))}
    path = write_json(args.out / f"{args.protocol}-{args.method}-{args.setting}.json", record)
    print(f"chosen {args.setting}={chosen['value']} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
