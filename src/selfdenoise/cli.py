"""Command-line interface: parses, calls the public API, prints. No logic of its own.

Exit codes: 0 success; 2 bad input (one-line message on stderr, no traceback, no partial output);
130 interrupted. The API modules are loaded when a command runs (``lazy_loader.attach`` in ``selfdenoise/__init__.py``), so ``--help`` and
``selfdenoise methods`` do not import torch.
"""
from __future__ import annotations

import errno
import inspect
import json
import shlex
import signal
import sys
import warnings
from pathlib import Path

import click

import selfdenoise  # the API modules load on first use (``selfdenoise/__init__.py``), not with the CLI

from . import sequences
from .core.errors import InputError, SelfdenoiseError
from .core.params import parse_params, per_method_params
from .core.progress import tqdm
from .core.version import __version__
from .methods import registry


class _Group(click.Group):
    """Turns library errors into one line and exit code 2; warnings into one line each."""

    def main(self, *args, **kwargs):
        warnings.showwarning = lambda message, category, *a, **k: click.echo(f"warning: {message}", err=True)
        on_term = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _interrupt)  # `kill`: the same clean stop as Ctrl-C (no .part files left)
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except SelfdenoiseError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except OSError as e:  # the machine's fault, not ours: a full disk, a read-only or vanished folder
            if e.errno not in _STORAGE_ERRORS:
                raise
            click.echo(f"error: {e.filename + ': ' if e.filename else ''}{e.strerror}", err=True)
            sys.exit(2)
        finally:
            signal.signal(signal.SIGTERM, on_term)


#: storage failures reported in one line wherever they surface (writes made through ``core.io`` say so already)
_STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _command_line() -> str:
    return "selfdenoise " + " ".join(shlex.quote(a) for a in sys.argv[1:])


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="selfdenoise")
def main():
    """Learn to denoise from noisy data alone."""


def method_params(params, *fns) -> dict:
    """``-p KEY=VALUE`` options; a key that is a named argument of one of ``fns`` (it has its own flag)
    is refused."""
    options = parse_params(params)
    named = [k for fn in fns for k, p in inspect.signature(fn).parameters.items() if p.kind is not p.VAR_KEYWORD]
    clash = sorted(set(options) & set(named))
    if clash:
        raise InputError(f"-p {clash[0]}=...: use the --{clash[0].replace('_', '-')} option")
    return options


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="Output file, or folder for several inputs.")
@click.option("-m", "--method", default="zero-shot", show_default=True,
              help="zero-shot, asym-mask (fits the image; real camera noise), n2v2 / n2v / struct-n2v (fit the "
              "image; microscopy), self2self, nlm, bm3d.")
@click.option("--model", "model_file", type=click.Path(), default=None,
              help="A trained model file (from `selfdenoise train`); replaces --method.")
@click.option("--init", default=None, help="Methods that fit the image and also train on a data set (self2self, "
              "n2v, asym-mask, ...): a model file of the method, or zoo:NAME, to start each fit from; zero-shot: a "
              "model of its compact UNet (zoo:gauss-color) in place of its shipped prior.")
@click.option("--sigma", default="auto", show_default=True, help="Noise level in 0-255 units, or 'auto'.")
@click.option("--tile", type=int, default=None, help="Tile size in pixels for inference (default: automatic).")
@click.option("--tta", type=click.IntRange(1, 8), default=None, help="Trained models: flips/rotations averaged.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--budget", type=float, default=None, help="Methods that fit the image (zero-shot, asym-mask, "
              "n2v2, self2self, ...): seconds per image.")
@click.option("--quality", type=click.Choice(["fast", "balanced", "best"]), default=None,
              help="Zero-shot: how much of its recipe the photo's size allows (default balanced; best: all of it).")
@click.option("--max-pixels", type=click.IntRange(1), default=None,
              help="Refuse images with more pixels than this (per slice) before decoding them (default 250 million).")
@click.option("--axes", default=None, help="What each dimension of a TIFF/NPY input is, CAREamics' letters: YX, YXC, "
              "CYX, ZYX, TYX, ZCYX, TZYX, ... (default: the file's OME/ImageJ metadata, else its shape).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Spread the files (or one Zarr store's blocks) "
              "over a Dask cluster: tcp://host:8786, or local:N for N worker processes here.")
@click.option("--sequence", is_flag=True, help="Read .npy inputs as sequences (frames x points x coords).")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A method option, e.g. -p window=15 (savgol), -p steps=300 (self2self), -p r3=false "
              "(asym-mask, also with --model); `selfdenoise methods` lists them.")
@click.option("--report", is_flag=True, help="Also write a before/after page (slider, synced zoom): "
              "OUTPUT/report.html, or OUTPUT_STEM.report.html next to a single output file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def denoise(inputs, output, method, model_file, init, sigma, tile, tta, seed, budget, quality, max_pixels, axes,
            scheduler, sequence, params, report, quiet):
    """Denoise images (PNG, JPEG, TIFF incl. 16-bit and stacks, NPY; OME-Zarr and Zarr out of core); the output
    keeps the input's form.

    Sequences (face-landmark tracks; .json, .csv, or .npy with --sequence) are denoised with
    --method self2self (the default for them), savgol, gaussian or one-euro."""
    jobs = selfdenoise.api.sequence_jobs(list(inputs), output, method, sequence)
    if jobs is not None:
        if report:
            raise InputError("--report compares images; sequences have no before/after page")
        source = click.get_current_context().get_parameter_source("method")
        seq_method = "self2self" if source == click.core.ParameterSource.DEFAULT else method
        seq_options = {**parse_params(params), **({"budget": budget} if budget is not None else {})}
        for src, dst in jobs:
            r = selfdenoise.api.denoise_sequence_file(src, dst, seq_method, seed=seed, progress=not quiet, **seq_options)
            click.echo(f"{r['output']}  ({r['seconds']:.1f} s, {r['gaps']['missing_values']} missing values filled)")
        return
    extra = method_params(params, selfdenoise.api.denoise_file, selfdenoise.api.denoise)
    options = {**extra, **({"budget": budget} if budget is not None else {}),
               **({"quality": quality} if quality is not None else {}), **({"init": init} if init is not None else {})}
    if model_file is not None:
        fitting = next((k for k, v in (("budget", budget), ("quality", quality), ("init", init)) if v is not None), None)
        if fitting:
            raise InputError(f"--{fitting} is for methods that fit the photo; a trained model (--model) needs none")
        options = {"model": selfdenoise.api.load_model(model_file), **extra, **({"tta": tta} if tta else {})}
    else:
        registry.check_name(method)
        if tta:
            options["tta"] = tta
    if scheduler is not None:
        return _denoise_on_cluster(inputs, output, method, scheduler, report, sigma=sigma, seed=seed, tile=tile,
                                   max_pixels=max_pixels, axes=axes, **options)
    pairs = selfdenoise.api.output_paths(list(inputs), output)
    many = len(pairs) > 1
    page = selfdenoise.api.denoise_report(output) if report else False
    failed = []
    for src, dst in tqdm(pairs, desc="images", unit="img", disable=quiet or not many):
        try:
            r = selfdenoise.api.denoise_file(src, dst, method, sigma=sigma, seed=seed, tile=tile, progress=not quiet,
                                             report=page, max_pixels=max_pixels, axes=axes, **options)
        except InputError as e:  # one bad file in a folder: say so, keep going, fail at the end
            if not many:
                raise
            failed.append(str(src))
            click.echo(f"error: {e}", err=True)
            continue
        click.echo(f"{r['output']}  ({r['seconds']:.1f} s)")
    if report and len(failed) < len(pairs):
        click.echo(f"{page.write()}  (before/after page)")
    if failed:
        raise _some_failed(len(failed), len(pairs))


def _some_failed(failed: int, total: int) -> InputError:
    return InputError(f"{failed} of {total} inputs failed (each named above); the others were written")


def _denoise_on_cluster(inputs, output, method, scheduler, report, **options):
    """``denoise --scheduler``: the files as tasks on a Dask cluster, reported as the one-process loop does."""
    if report:
        raise InputError("--report gathers the images in this process; run without --scheduler")
    results = selfdenoise.api.denoise_files(list(inputs), output, method, scheduler=scheduler, **options)
    failed = [r for r in results if "error" in r]
    if failed and len(results) == 1:
        raise InputError(failed[0]["error"])
    for r in results:
        click.echo(f"error: {r['error']}" if "error" in r else f"{r['output']}  ({r['seconds']:.1f} s)",
                   err="error" in r)
    if failed:
        raise _some_failed(len(failed), len(results))


@main.command()
@click.argument("data_path", required=False, type=click.Path(), metavar="[DATA]")
@click.option("-m", "--method", required=True, help="n2n (Noise2Noise), ne2ne (Neighbor2Neighbor), asym-mask (real camera "
              "noise), tcfl (OCT, with --clean), n2v / n2v2 / struct-n2v (Noise2Void family: microscopy), ne2ne-3d "
              "(Neighbor2Neighbor on ZYX volumes).")
@click.option("--data", default=None, type=click.Path(), help="Folder of noisy images (a/ + b/ pairs or "
              "sub-folder groups for n2n on real data), or a TIFF/NPY stack or a folder of them; ne2ne-3d: a TIFF/NPY "
              "volume or a folder of them. Or give it as the argument DATA.")
@click.option("--axes", default=None, help="What each dimension of TIFF/NPY training files is, as for `denoise "
              "--axes` (ZYX, TYX, TZYX, ZCYX, ...). With T or Z, n2n pairs neighbouring frames (planes); a stack "
              "without them is repeated frames of one scene.")
@click.option("-o", "--output", required=True, type=click.Path(), help="Model file to write (e.g. model.sdm).")
@click.option("--noise", default=None, help="Synthetic noise drawn on the fly (the data are then the signal).")
@click.option("--init", default=None, help="A model file, or zoo:NAME, with the same network (of this method, or of "
              "n2n/ne2ne/n2v with the same --net) whose weights the training starts from (fine-tuning; ne2ne then "
              "defaults to --lr 3e-4).")
@click.option("--clean", type=click.Path(), default=None, help="tcfl: folder of unpaired clean images of other scenes.")
@click.option("--gan", default=None, help="tcfl: lsgan (the paper's) or wgan.")
@click.option("--val", type=click.Path(), default=None, help="Folder of clean validation images.")
@click.option("--val-noise", default=None, help="Noise for the validation images (default: --noise).")
@click.option("--steps", type=int, default=None, help="Training steps.")
@click.option("--minutes", type=float, default=None, help="Training wall time (schedules follow the time).")
@click.option("--preset", default="fast", show_default=True, help="fast (CPU) or paper (the paper's recipe).")
@click.option("--net", default=None, help="fast, unet (the papers'), srresnet; unet3d (ne2ne-3d).")
@click.option("--loss", default=None, help="n2n: l2, l1 or l0 (annealed).")
@click.option("--gamma", type=float, default=None, help="ne2ne: final regulariser weight (ramped from 0).")
@click.option("--batch", type=int, default=None, help="Crops per step (global, over all processes).")
@click.option("--crop", type=int, default=None, help="Crop side in pixels.")
@click.option("--lr", type=float, default=None, help="Peak learning rate.")
@click.option("--optimizer", type=click.Choice(["adam", "adamw"]), default=None)
@click.option("--weight-decay", type=float, default=None)
@click.option("--schedule", default=None, help="constant, cosine, step:0.2:0.5, multistep:0.5,0.75:0.1, rampdown:0.3.")
@click.option("--warmup", type=float, default=None, help="Warm-up, fraction of training.")
@click.option("--clip", type=float, default=None, help="Clip the gradient norm.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--val-every", type=int, default=0, help="Validate every N steps.")
@click.option("--checkpoint-every", type=int, default=0, help="Also checkpoint every N steps.")
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True,
              help="Checkpoint every N minutes (0: only on Ctrl-C or kill).")
@click.option("--resume", type=click.Path(), default=None,
              help="Checkpoint to continue from (default: MODEL.checkpoint when an interrupted run left one).")
@click.option("--log", type=click.Path(), default=None, help="CSV log (default: MODEL.log.csv).")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A method option, e.g. -p masks=3 -p fill=zero -p tv=0.1 (asym-mask), -p widths=32,64,96.")
@click.option("-q", "--quiet", is_flag=True)
def train(data_path, method, data, axes, output, noise, init, clean, gan, val, val_noise, steps, minutes, preset, net, loss,
          gamma, batch, crop, lr, optimizer, weight_decay, schedule, warmup, clip, device, seed, val_every,
          checkpoint_every, checkpoint_minutes, resume, log, params, quiet):
    """Train Noise2Noise or Neighbor2Neighbor on noisy images (ne2ne-3d: on a ZYX volume); writes a reusable
    model file.

    The checkpoint MODEL.checkpoint is written every 5 minutes and on Ctrl-C or kill; running the same
    command again continues from it (with --steps, to the same result). Run under `torchrun --nproc_per_node N -m selfdenoise
    train ...` for multi-process training."""
    if (data is None) == (data_path is None):
        raise InputError("give the training data once: as the argument DATA or as --data")
    data = data if data is not None else data_path
    options = dict(net=net, loss=loss, gamma=gamma, batch=batch, crop=crop, lr=lr, optimizer=optimizer,
                   weight_decay=weight_decay, schedule=schedule, warmup=warmup, clip=clip, gan=gan)
    checkpoint = str(output) + ".checkpoint"
    try:
        r = selfdenoise.api.train(data, method, output, noise=noise, init=init, clean=clean, axes=axes, val=val,
                      val_noise=val_noise, steps=steps, minutes=minutes, preset=preset, seed=seed, device=device,
                      checkpoint=checkpoint,
                      checkpoint_every=checkpoint_every, checkpoint_minutes=checkpoint_minutes, resume=resume,
                      log=log or str(output) + ".log.csv",
                      val_every=val_every, progress=not quiet,
                      **{**{k: v for k, v in options.items() if v is not None}, **method_params(params, selfdenoise.api.train)})
    except KeyboardInterrupt:
        if Path(checkpoint).is_file():
            click.echo(f"checkpoint saved: {checkpoint} (run the same command again to continue)", err=True)
        raise
    if r.path:
        gf = f", {r.gflops_per_s:.0f} GFLOP/s" if r.gflops_per_s else ""
        vp = f", validation PSNR {r.val_psnr:.2f} dB" if r.val_psnr is not None else ""
        click.echo(f"{r.path}  ({r.steps} steps in {r.seconds:.0f} s{gf}{vp})")
    if r.stopped:
        click.echo(f"training stopped early at step {r.steps}: {r.stopped}", err=True)


@main.command()
@click.argument("model_file", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript", "bioimageio"]), default="onnx",
              show_default=True)
@click.option("-o", "--output", type=click.Path(), default=None,
              help="Default: MODEL.onnx / MODEL.pt / MODEL.bioimageio.zip.")
@click.option("--no-check", is_flag=True, help="Skip the comparison with PyTorch (and bioimageio.core's test).")
def export(model_file, fmt, output, no_check):
    """Export a trained model to ONNX, TorchScript (checked against PyTorch, max abs diff 1e-4) or a bioimage.io
    package (those weights, passed by bioimageio.core's test)."""
    r = selfdenoise.export.export_model(model_file, output, fmt, check=not no_check)
    diff = f", max abs diff vs PyTorch {r['max_abs_diff']:.1e}" if r.get("max_abs_diff") is not None else ""
    test = f", bioimageio.core test {r['test']}" if r.get("test") else ""
    click.echo(f"{r['path']}  ({r['format']}{diff}{test})")


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="Output file, or folder for several inputs.")
@click.option("--noise", "spec", required=True, help="gauss:25, gauss:5-50, poisson:30, bernoulli:0.5, ...")
@click.option("--seed", type=int, default=0, show_default=True, help="Image i gets seed + i.")
def noise(inputs, output, spec, seed):
    """Add seeded synthetic noise. NPY output keeps unclipped float values; image formats clip."""
    for dst in selfdenoise.api.add_noise_files(list(inputs), output, spec, seed):
        click.echo(str(dst))


@main.command("landmarks-synth")
@click.option("-o", "--output", required=True, type=click.Path(), help="Noisy track: .json, .csv or .npy.")
@click.option("--clean", type=click.Path(), default=None, help="Also write the clean truth here.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--frames", type=click.IntRange(8, None), default=900, show_default=True)
@click.option("--points", type=click.IntRange(1, None), default=478, show_default=True)
def landmarks_synth(output, clean, seed, frames, points):
    """Write a seeded synthetic face-landmark track (head motion, expressions, jitter, outliers, gaps)."""
    info = sequences.landmarks.write_synth_track(output, seed, clean, frames, points)
    click.echo(f"{output}  ({frames} frames x {points} points x 3; {len(info['missing_frames'])} missing frames, "
               f"{len(info['outlier_frames'])} outlier frames)")


@main.command("eval")
@click.option("--clean", required=True, type=click.Path(), help="Clean reference file or folder.")
@click.option("--test", "test", required=True, type=click.Path(), help="Denoised file or folder (matched by name).")
@click.option("--json", "json_path", type=click.Path(), default=None, help="Also write the results here.")
def evaluate(clean, test, json_path):
    """PSNR, SSIM, EPI and GCMSE per image and on average."""
    result = selfdenoise.bench.evaluate_folders(Path(clean), Path(test), Path(json_path) if json_path else None)
    for row in result["per_image"]:
        click.echo(f"{row['name']:<32} PSNR {row['psnr']:6.2f}  SSIM {row['ssim']:.4f}  "
                   f"EPI {row['epi_correlation']:.3f}  GCMSE {row['gcmse']:.2f}")
    m = result["mean"]
    click.echo(f"{'mean (' + str(result['n_images']) + ')':<32} PSNR {m['psnr']:6.2f}  SSIM {m['ssim']:.4f}  "
               f"EPI {m['epi_correlation']:.3f}  GCMSE {m['gcmse']:.2f}")


@main.command()
@click.argument("protocol")
@click.option("--data", default=None, type=click.Path(exists=True, file_okay=False),
              help="The data folder (not needed by landmarks-synth: synthetic).")
@click.option("--methods", default=None, help="Comma-separated methods; the baselines always run "
              "[default: zero-shot (+ nlm, bm3d); landmarks-synth: self2self (+ savgol, gaussian, one-euro)].")
@click.option("--dataset", default=None, help="Test set within the protocol (e.g. kodak24, polyu).")
@click.option("--split", type=click.Choice(["test", "validation"]), default="test", show_default=True,
              help="validation: where settings are selected; test: where figures are reported.")
@click.option("--exploratory", is_flag=True, help="Allow uncommitted changes; the results say so and stay out "
              "of the README.")
@click.option("--limit", type=int, default=None, help="Only the first N test images (landmarks-synth: N tracks, "
              "default 5).")
@click.option("--every", type=int, default=1, show_default=True, help="Every N-th test image (an even subset).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default="benchmarks/results", show_default=True, type=click.Path())
@click.option("--budget", type=float, default=None, help="zero-shot, self2self: seconds per image.")
@click.option("--train-minutes", type=float, default=None, help="Dataset methods (n2n, ne2ne, asym-mask, tcfl): training wall time per method.")
@click.option("--train-steps", type=int, default=None, help="Dataset methods: training steps per method.")
@click.option("--preset", default="fast", show_default=True, help="Dataset methods training recipe: fast or paper.")
@click.option("--device", default="auto", show_default=True, help="Dataset methods training device: auto, cpu, cuda.")
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True,
              help="Dataset methods: checkpoint the training every N minutes (the same command resumes it).")
@click.option("--peers", default=None, help="Peer tools run in the same run, e.g. careamics-n2v2,deepinv-ne2ne "
              "(their environment: `make peers`).")
@click.option("--peer-budget", type=float, default=30.0, show_default=True, help="Peers: training seconds per image.")
@click.option("-p", "--param", "params", multiple=True, metavar="METHOD.KEY=VALUE",
              help="An option of one method, e.g. -p n2n.tta=2, -p asym-mask.r3=false, a training setting of a "
              "method trained in the run (-p tcfl.crop=64: batch, crop, lr, schedule, warmup, betas, optimizer, "
              "weight_decay, clip), or -p n2n.model=FILE (a trained model: no training in the run).")
@click.option("-q", "--quiet", is_flag=True)
def bench(protocol, data, methods, dataset, split, exploratory, limit, every, seed, out, budget, train_minutes,
          train_steps, preset, device, checkpoint_minutes, peers, peer_budget, params, quiet):
    """Run a benchmark protocol with BM3D and NLM in the same run; write JSON + Markdown/HTML report."""
    names = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    options = {"zero-shot": {"budget": budget}, "self2self": {"budget": budget}} if budget is not None else {}
    for method, opts in per_method_params(params).items():
        options.setdefault(method, {}).update(opts)
    result = selfdenoise.bench.run_protocol(protocol, Path(data) if data else None, names, out_dir=Path(out), limit=limit, every=every, seed=seed,
                          dataset=dataset, split=split, exploratory=exploratory, method_options=options,
                          peers=[p.strip() for p in peers.split(",") if p.strip()] if peers else None,
                          peer_budget=peer_budget,
                          command=_command_line(), progress=not quiet,
                          train={"minutes": train_minutes, "steps": train_steps, "preset": preset, "device": device,
                                 "checkpoint_minutes": checkpoint_minutes})
    click.echo(json.dumps(result.get("summary", result), indent=1, default=str)[:4000])
    failed = [f"{m} on {r['name']} ({r['error']})" for m, rows in (result.get("failed") or {}).items() for r in rows]
    if failed:
        raise SelfdenoiseError(f"{len(failed)} failed: {'; '.join(failed)[:1500]}; the other results are written; "
                               "run the same command again to retry only these")


@main.command()
@click.option("--out", default="selfdenoise-demo", show_default=True, type=click.Path())
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--budget", type=float, default=None, help="Zero-shot: seconds for the whole image.")
@click.option("-q", "--quiet", is_flag=True)
def demo(out, seed, budget, quiet):
    """Noise a bundled image, denoise it with zero-shot, NLM and BM3D, and write a report."""
    selfdenoise.bench.run_demo(out_dir=out, seed=seed, progress=not quiet, budget=budget)


@main.command()
@click.argument("model_file", type=click.Path())
def info(model_file):
    """Show what a model file (or zoo:NAME) holds (method, channels, configuration, parameters); never unpickles."""
    meta = selfdenoise.modelfile.read_metadata(selfdenoise.zoo.resolve(model_file)[0])
    for key in ("method", "channels", "parameters", "version", "format"):
        click.echo(f"{key:<11} {meta[key]}")
    click.echo(f"{'config':<11} {json.dumps(meta['config'], sort_keys=True)}")
    if meta["extra"]:
        click.echo(f"{'extra':<11} {json.dumps(meta['extra'], sort_keys=True)}")


@main.command("models")
@click.argument("name", required=False)
def list_models(name):
    """List the shipped models (denoise with --model zoo:NAME); with NAME, everything its entry records."""
    known = selfdenoise.zoo.entries()
    if name:
        name = name.removeprefix(selfdenoise.zoo.PREFIX)
        if name not in known:
            raise InputError(f"no zoo model '{name}' (known: {', '.join(sorted(known)) or 'none'})")
        click.echo(json.dumps(known[name], indent=2))
        return
    for key, entry in sorted(known.items()):
        click.echo(f"{selfdenoise.zoo.PREFIX + key:<18} {entry['method']}, {entry['channels']} channel(s): "
                   f"{entry['summary']}")


@main.command("methods")
@click.argument("name", required=False)
def list_methods(name):
    """List the available methods; with NAME, the options of that method (for -p KEY=VALUE)."""
    if name:
        _show_options(name)
        return
    for name in sorted(registry.LEARNED):
        kinds = registry.kinds(name)
        how = ("zero-shot: fits the image itself" if "dataset" not in kinds else "trained on noisy data: selfdenoise "
               "train" + (", or fits the image itself" if "single-image" in kinds else ""))
        click.echo(f"{name:<12} learned ({how})")
    for name in sorted(registry.CLASSICAL):
        click.echo(f"{name:<12} classical")
    for name, entry in registry.SEQUENCE_METHODS.items():
        kind = "learned (fits the track itself)" if "sequence" in entry.kinds else "classical smoother"
        click.echo(f"{name:<12} sequences (.json/.csv/.npy tracks): {kind}")


def _show_options(name: str) -> None:
    """Print each option of an image and/or sequence method with its default."""
    sections = []
    if name in registry.IMAGE_METHODS:
        sections.append(("images", registry.method_options(name)))
    if name in registry.SEQUENCE_METHODS:
        sections.append(("sequences", registry.sequence_options(name)))
    if not sections:
        known = sorted(set(registry.IMAGE_METHODS) | set(registry.SEQUENCE_METHODS))
        raise InputError(f"unknown method '{name}' (known: {', '.join(known)})")
    for kind, options in sections:
        click.echo(f"{name} ({kind}) options, -p KEY=VALUE:")
        for key, default in options.items():
            click.echo(f"  {key:<16} {'(required)' if default is inspect.Parameter.empty else repr(default)}")


if __name__ == "__main__":  # pragma: no cover
    main()
