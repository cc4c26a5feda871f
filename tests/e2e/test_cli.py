"""The CLI end to end, as a user runs it (a real subprocess: exit codes, stderr, files). Most error paths
run in this process through click's runner (``run_here``), which goes through the same entry point."""
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "selfdenoise", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def run_here(*args):
    """``run(*args)`` in this process (no Python start-up): exit code, stdout and stderr as a subprocess gives."""
    from click.testing import CliRunner

    from selfdenoise.cli import main

    saved = warnings.showwarning  # the CLI's entry point prints warnings its own way
    try:
        r = CliRunner().invoke(main, [str(a) for a in args])
    finally:
        warnings.showwarning = saved
    return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)


@pytest.fixture
def noisy_png(tmp_path, natural):
    noisy = np.clip(natural + np.random.default_rng(0).normal(0, 25 / 255, natural.shape), 0, 1)
    p = tmp_path / "noisy.png"
    Image.fromarray(np.round(noisy * 255).astype(np.uint8)).save(p)
    return p


def assert_clean_failure(r, *words):
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if l and not l.startswith("warning:")]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_noise_then_denoise_nlm_and_eval(tmp_path, natural):
    clean = tmp_path / "clean.png"
    Image.fromarray(np.round(natural * 255).astype(np.uint8)).save(clean)
    r = run("noise", clean, "-o", tmp_path / "n.png", "--noise", "gauss:25", "--seed", "3")
    assert r.returncode == 0, r.stderr
    r = run("denoise", tmp_path / "n.png", "-o", tmp_path / "out" / "d.png", "--method", "nlm", "-q")
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "out" / "d.png"))
    assert out.shape == natural.shape and out.dtype == np.uint8
    r = run("eval", "--clean", clean, "--test", tmp_path / "out" / "d.png", "--json", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    assert "PSNR" in r.stdout and (tmp_path / "e.json").exists()


def _gray16_and_rgb_inputs(src, seed: int, gray_shape: tuple[int, int], rgb_name: str):
    """A folder ``src`` holding a 16-bit gray PNG (a16.png) and an 8-bit RGB one (21x19), both of noise."""
    src.mkdir()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 65536, gray_shape, dtype=np.uint16)).save(src / "a16.png")
    Image.fromarray(rng.integers(0, 256, (21, 19, 3), dtype=np.uint8)).save(src / rgb_name)
    return src


def test_many_files_into_a_folder_keep_dtype(tmp_path):
    src = _gray16_and_rgb_inputs(tmp_path / "in", 1, (20, 23), "b.png")
    r = run("denoise", src, "-o", tmp_path / "out", "-m", "nlm", "--sigma", "20", "-q")
    assert r.returncode == 0, r.stderr
    a = np.asarray(Image.open(tmp_path / "out" / "a16.png"))
    assert a.dtype in (np.uint16, np.int32) and a.shape == (20, 23) and a.max() > 255
    assert np.asarray(Image.open(tmp_path / "out" / "b.png")).shape == (21, 19, 3)


def test_a_bad_file_in_a_folder_is_named_and_the_others_are_written(tmp_path):
    src = _gray16_and_rgb_inputs(tmp_path / "in", 2, (20, 23), "c.png")
    (src / "b.png").write_bytes(b"not a png")
    r = run_here("denoise", src, "-o", tmp_path / "out", "-m", "nlm", "--sigma", "20", "-q")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and "b.png" in lines[0] and "1 of 3 inputs failed" in lines[1], r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a16.png", "c.png"]


def test_too_large_an_image_is_refused_before_decoding(tmp_path, noisy_png):
    assert_clean_failure(run_here("denoise", noisy_png, "-o", tmp_path / "o.png", "-m", "nlm", "--max-pixels", "9000"),
                         "noisy.png", "96x96", "above the limit", "--max-pixels")
    assert not (tmp_path / "o.png").exists()


def test_sigterm_stops_cleanly_and_leaves_no_file(tmp_path, noisy_png):
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "selfdenoise", "denoise", noisy_png, "-o", tmp_path / "o.png",
                             "-p", "steps=100000", "-q"], stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    assert "interrupted" in proc.stderr.read()
    assert [p.name for p in tmp_path.iterdir() if p.name != noisy_png.name] == []


def test_bad_inputs_fail_cleanly(tmp_path, noisy_png):
    out = tmp_path / "o.png"
    assert_clean_failure(run("denoise", tmp_path / "missing.png", "-o", out, "-m", "nlm"), "missing.png", "no such")
    (tmp_path / "text.png").write_text("hello")
    assert_clean_failure(run_here("denoise", tmp_path / "text.png", "-o", out, "-m", "nlm"), "text.png", "not an image")
    data = noisy_png.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 3])
    assert_clean_failure(run_here("denoise", tmp_path / "cut.png", "-o", out, "-m", "nlm"), "cut.png")
    (tmp_path / "zero.png").write_bytes(b"")
    assert_clean_failure(run_here("denoise", tmp_path / "zero.png", "-o", out, "-m", "nlm"), "zero.png", "empty")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(tmp_path / "one.png")
    assert_clean_failure(run_here("denoise", tmp_path / "one.png", "-o", out, "-m", "nlm"), "one.png", "1x1")
    arr = np.ones((9, 9), np.float32)
    arr[0, 0] = np.inf
    np.save(tmp_path / "inf.npy", arr)
    assert_clean_failure(run_here("denoise", tmp_path / "inf.npy", "-o", tmp_path / "o.npy", "-m", "nlm"), "inf.npy", "NaN/Inf")
    assert_clean_failure(run_here("denoise", noisy_png, "-o", out, "-m", "nosuch"), "nosuch")
    assert_clean_failure(run_here("noise", noisy_png, "-o", out, "--noise", "gauss:abc"), "gauss:abc")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert_clean_failure(run_here("denoise", noisy_png, "-o", blocker / "o.png", "-m", "nlm"), "o.png")
    assert not out.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if ".part" in p.name]
    assert leftovers == []


def test_methods_and_help():
    r = run("methods")
    assert r.returncode == 0 and "zero-shot" in r.stdout and "nlm" in r.stdout
    r = run("--help")
    assert r.returncode == 0 and "denoise" in r.stdout
    r = run("methods", "asym-mask")  # the options of one method, with their defaults
    assert r.returncode == 0 and "blend_window" in r.stdout and "r3_p" in r.stdout and "0.16" in r.stdout
    r = run("methods", "self2self")  # an image method and a sequence method of the same name
    assert r.returncode == 0 and "(images)" in r.stdout and "(sequences)" in r.stdout
    assert_clean_failure(run_here("methods", "bm4d"), "unknown method 'bm4d'")


def test_denoise_report_writes_a_before_after_page(tmp_path):
    src = _gray16_and_rgb_inputs(tmp_path / "in", 3, (17, 23), "b&c.png")
    r = run("denoise", src, "-o", tmp_path / "out", "-m", "nlm", "--sigma", "20", "--report", "-q")
    assert r.returncode == 0, r.stderr
    page = tmp_path / "out" / "report.html"
    assert f"{page}  (before/after page)" in r.stdout
    text = page.read_text()
    assert text.count('class="sd-viewer"') == 2 and text.count('type="range"') == 2 and "b&amp;c.png" in text
    previews = sorted((tmp_path / "out" / "report_files").iterdir())
    assert len(previews) == 4 and all(f'src="report_files/{p.name}"' in text for p in previews)
    with Image.open(previews[0]) as im:  # the 16-bit gray input, shown as 8-bit gray
        assert im.mode == "L" and im.size == (23, 17)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a16.png", "b&c.png", "report.html", "report_files"]


def test_tiff_stack_denoised_slice_by_slice_keeps_16_bits(tmp_path):
    import tifffile

    rng = np.random.default_rng(2)
    base = np.linspace(10000, 50000, 24 * 27).reshape(24, 27)
    stack = np.stack([base + rng.normal(0, 3000, base.shape) for _ in range(3)]).clip(0, 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    r = run("denoise", tmp_path / "s.tif", "-o", tmp_path / "d.tif", "-m", "nlm", "-q")
    assert r.returncode == 0, r.stderr
    out = tifffile.imread(tmp_path / "d.tif")
    assert out.shape == stack.shape and out.dtype == np.uint16
    err_in = np.abs(stack.astype(float) - base).mean()
    err_out = np.abs(out.astype(float) - base).mean()
    assert err_out < 0.6 * err_in


def test_info_shows_a_model_and_rejects_other_files(tmp_path, noisy_png):
    from selfdenoise.methods import registry
    from selfdenoise.modelfile import save_model

    method = registry.get_method("zero-shot", use_prior=False)
    save_model(tmp_path / "m.sdm", method.build_model(1), method="zero-shot", channels=1, config={"use_prior": False})
    r = run("info", tmp_path / "m.sdm")
    assert r.returncode == 0, r.stderr
    assert "zero-shot" in r.stdout and "channels" in r.stdout and "use_prior" in r.stdout
    assert_clean_failure(run_here("info", noisy_png), "noisy.png", "not a selfdenoise model file")


@pytest.fixture
def train_folder(tmp_path, natural):
    folder = tmp_path / "noisy"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        img = np.roll(natural, 9 * i, axis=1) + rng.normal(0, 25 / 255, natural.shape)
        Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).save(folder / f"n{i}.png")
    return folder


def test_train_info_denoise_export(tmp_path, train_folder, noisy_png):
    model = tmp_path / "ne2ne.sdm"
    r = run("train", "-m", "ne2ne", "--data", train_folder, "-o", model, "--steps", "6", "--crop", "32",
            "--batch", "2", "-p", "augment=flips", "-q")
    assert r.returncode == 0, r.stderr
    assert model.is_file() and not (tmp_path / "ne2ne.sdm.checkpoint").exists()
    assert (tmp_path / "ne2ne.sdm.log.csv").is_file()
    r = run("info", model)
    assert r.returncode == 0 and "ne2ne" in r.stdout and '"steps": 6' in r.stdout and '"augment": "flips"' in r.stdout
    r = run("denoise", noisy_png, "-o", tmp_path / "d.png", "--model", model, "--tta", "2", "-q")
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "d.png"))
    assert out.shape == (96, 96, 3)
    pytest.importorskip("onnxruntime")
    r = run("export", model, "--format", "onnx")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "ne2ne.onnx").is_file() and "max abs diff" in r.stdout


def test_train_and_model_errors(tmp_path, train_folder, noisy_png, natural):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_failure(run_here("train", "-m", "ne2ne", "--data", empty, "-o", tmp_path / "m.sdm", "--steps", "2"),
                         "no images")
    assert_clean_failure(run_here("train", "-m", "ne2ne", "--data", train_folder, "-o", tmp_path / "m.sdm",
                             "--steps", "2", "--crop", "128"), "smaller than the 128x128 crop")
    assert_clean_failure(run_here("train", "-m", "n2n", "--data", train_folder, "-o", tmp_path / "m.sdm",
                             "--steps", "2", "--crop", "32"), "two noisy realisations")
    assert_clean_failure(run_here("train", "-m", "zero-shot", "--data", train_folder, "-o", tmp_path / "m.sdm",
                             "--steps", "2"), "not trained on a data set")
    assert_clean_failure(run_here("train", "-m", "n2n", "--data", train_folder, "--noise", "gauss:25", "-o",
                             tmp_path / "m.sdm", "--steps", "2", "-p", "augment=spin"), "unknown augment 'spin'")
    (train_folder / "n1.png").write_bytes(b"junk")
    assert_clean_failure(run_here("train", "-m", "ne2ne", "--data", train_folder, "-o", tmp_path / "m.sdm",
                             "--steps", "2", "--crop", "32"), "cannot be read", "n1.png")
    assert not (tmp_path / "m.sdm").exists()
    # a gray model applied to an RGB image
    gray = tmp_path / "gray"
    gray.mkdir()
    Image.fromarray(np.round(natural.mean(-1) * 255).astype(np.uint8)).save(gray / "g.png")
    r = run("train", "-m", "n2n", "--data", gray, "--noise", "gauss:25", "-o", tmp_path / "g.sdm", "--steps", "2",
            "--crop", "32", "--batch", "2", "-q")
    assert r.returncode == 0, r.stderr
    assert_clean_failure(run_here("denoise", noisy_png, "-o", tmp_path / "x.png", "--model", tmp_path / "g.sdm"),
                         "trained on gray images")
    assert not (tmp_path / "x.png").exists()
    assert_clean_failure(run_here("denoise", noisy_png, "-o", tmp_path / "x.png", "--model", noisy_png),
                         "not a selfdenoise model")


def test_two_processes_match_one_process_with_the_whole_batch(tmp_path, train_folder):
    """torchrun with 2 CPU processes (gloo), 2 crops each == 1 process with 4 crops."""
    from safetensors.torch import load_file

    common = ["train", "-m", "ne2ne", "--data", train_folder, "--steps", "4", "--crop", "32", "--batch", "4",
              "--device", "cpu", "-q"]
    one = run(*common, "-o", tmp_path / "one.sdm")
    assert one.returncode == 0, one.stderr
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "selfdenoise", *map(str, common), "-o", tmp_path / "two.sdm"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = load_file(tmp_path / "one.sdm"), load_file(tmp_path / "two.sdm")
    assert a.keys() == b.keys()
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    moved = max(float(a[k].abs().max()) for k in a)
    assert diff < 1e-4 and moved > 0, diff


def test_self2self_denoises_within_its_budget(tmp_path, natural):
    small = natural[:33, :41]
    noisy = np.clip(small + np.random.default_rng(2).normal(0, 25 / 255, small.shape), 0, 1)
    src = tmp_path / "noisy.png"
    Image.fromarray(np.round(noisy * 255).astype(np.uint8)).save(src)
    r = run("denoise", src, "-o", tmp_path / "out.png", "--method", "self2self", "--budget", "3", "-q")
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == small.shape and out.dtype == np.uint8
    seconds = float(r.stdout.strip().split("(")[-1].split()[0])
    assert seconds < 3 + 6, r.stdout  # one training step and one pass may overrun on a busy machine
    r = run("denoise", src, "-o", tmp_path / "o2.png", "--method", "self2self", "--budget", "-1", "-q")
    assert_clean_failure(r, "budget")
    assert not (tmp_path / "o2.png").exists()


@pytest.fixture
def oct_like_tiffs(tmp_path):
    """Tiny 16-bit TIFFs: noisy B-scans (speckle-like multiplicative noise) and clean images of other scans."""
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(3)
    rows = np.linspace(0, 6, 37)[:, None] + np.zeros((1, 45))
    noisy, clean = tmp_path / "oct_noisy", tmp_path / "oct_clean"
    noisy.mkdir()
    clean.mkdir()
    for i in range(3):
        signal = 0.4 + 0.3 * np.sin(rows + i)
        speckle = signal * rng.gamma(4.0, 0.25, signal.shape)
        tifffile.imwrite(noisy / f"scan{i}.tif", np.round(np.clip(speckle, 0, 1) * 65535).astype(np.uint16))
    for i in range(2):
        tifffile.imwrite(clean / f"avg{i}.tif", np.round((0.4 + 0.3 * np.cos(rows * 1.3 + i)) * 65535).astype(np.uint16))
    return noisy, clean


def test_tcfl_trains_with_clean_images_and_denoises_16_bit(tmp_path, oct_like_tiffs):
    import tifffile

    noisy, clean = oct_like_tiffs
    model = tmp_path / "tcfl.sdm"
    r = run("train", "-m", "tcfl", "--data", noisy, "--clean", clean, "-o", model, "--steps", "2", "--crop", "32",
            "--batch", "2", "-q")
    assert r.returncode == 0, r.stderr
    r = run("info", model)
    assert r.returncode == 0 and "tcfl" in r.stdout and "clean_images" in r.stdout
    r = run("denoise", noisy / "scan0.tif", "-o", tmp_path / "d.tif", "--model", model, "-q")
    assert r.returncode == 0, r.stderr
    out = tifffile.imread(tmp_path / "d.tif")
    assert out.dtype == np.uint16 and out.shape == (37, 45)
    assert_clean_failure(run_here("train", "-m", "tcfl", "--data", noisy, "-o", tmp_path / "m.sdm", "--steps", "2",
                             "--crop", "32"), "--clean")
    assert not (tmp_path / "m.sdm").exists()


def test_tcfl_under_torchrun_two_processes(tmp_path, oct_like_tiffs):
    """Two optimisers, no DDP wrapper: gradients are averaged by hand; the run finishes and saves."""
    noisy, clean = oct_like_tiffs
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "selfdenoise", "train", "-m", "tcfl", "--data", noisy, "--clean", clean, "--steps", "2",
                          "--crop", "32", "--batch", "4", "--device", "cpu", "-q", "-o", tmp_path / "two.sdm"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert two.returncode == 0, two.stderr[-2000:]
    assert (tmp_path / "two.sdm").is_file()


def test_asym_mask_train_then_denoise_and_zero_shot(tmp_path, train_folder, noisy_png):
    model = tmp_path / "am.sdm"
    r = run("train", "-m", "asym-mask", "--data", train_folder, "-o", model, "--steps", "2", "--crop", "40",
            "--batch", "2", "-p", "masks=3", "-p", "widths=8,16,16", "-q")
    assert r.returncode == 0, r.stderr
    r = run("info", model)
    assert r.returncode == 0 and "asym-mask" in r.stdout and '"train_factor": 5' in r.stdout
    assert '"masks": 3' in r.stdout and '"widths": [8, 16, 16]' in r.stdout
    r = run("denoise", noisy_png, "-o", tmp_path / "d.png", "--model", model, "-q")
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(tmp_path / "d.png")).shape == (96, 96, 3)
    # inference options of a trained model change per call: without R3 and blend the output differs
    r = run("denoise", noisy_png, "-o", tmp_path / "plain.png", "--model", model, "-p", "r3=false", "-p", "blend=no", "-q")
    assert r.returncode == 0, r.stderr
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "plain.png")), np.asarray(Image.open(tmp_path / "d.png")))
    assert_clean_failure(run_here("denoise", noisy_png, "-o", tmp_path / "x.png", "--model", model, "-p", "colour=1"),
                         "no option colour")
    assert_clean_failure(run_here("train", "-m", "asym-mask", "--data", train_folder, "-o", tmp_path / "x.sdm",
                             "-p", "steps=3"), "--steps")
    assert_clean_failure(run_here("export", model), "cannot be exported")
    r = run("denoise", noisy_png, "-o", tmp_path / "z.png", "--method", "asym-mask", "--budget", "1", "-q")
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(tmp_path / "z.png")).shape == (96, 96, 3)
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((6, 40, 3), np.uint8)).save(tiny)
    assert_clean_failure(run_here("denoise", tiny, "-o", tmp_path / "t.png", "--method", "asym-mask", "--budget", "1"),
                         "tiny.png", "at least 10x10")
    assert not (tmp_path / "t.png").exists()
    r = run_here("denoise", noisy_png, "-o", tmp_path / "f.png", "--quality", "fast", "--budget", "2", "-q")
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(tmp_path / "f.png")).shape == (96, 96, 3)
    assert_clean_failure(run_here("denoise", noisy_png, "-o", tmp_path / "x.png", "--model", model, "--quality", "best"),
                         "--quality")
    assert_clean_failure(run_here("denoise", noisy_png, "-o", tmp_path / "x.png", "-m", "nlm", "--quality", "best"),
                         "quality")


def test_landmark_tracks_generate_denoise_and_fail_cleanly(tmp_path):
    track, clean = tmp_path / "track.json", tmp_path / "clean.json"
    r = run("landmarks-synth", "-o", track, "--clean", clean, "--seed", "3", "--frames", "40", "--points", "8")
    assert r.returncode == 0, r.stderr
    r = run("denoise", track, "-o", tmp_path / "out" / "s2s.json", "-p", "steps=5", "-p", "ensemble=2", "-q")
    assert r.returncode == 0, r.stderr
    assert "missing values filled" in r.stdout
    out = np.array(__import__("json").loads((tmp_path / "out" / "s2s.json").read_text()), dtype=float)
    assert out.shape == (40, 8, 3) and not np.isnan(out).any()
    r = run("landmarks-synth", "-o", tmp_path / "t.csv", "--frames", "40", "--points", "8")
    assert r.returncode == 0, r.stderr
    r = run("denoise", tmp_path / "t.csv", "-o", tmp_path / "d.csv", "-m", "savgol", "-p", "window=7", "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "d.csv").read_text().startswith("p0_x,p0_y,p0_z,p1_x")
    np.save(tmp_path / "t.npy", np.random.default_rng(0).normal(size=(40, 8, 3)).astype(np.float32))
    r = run("denoise", tmp_path / "t.npy", "-o", tmp_path / "d.npy", "--sequence", "-m", "one-euro", "-q")
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "d.npy").shape == (40, 8, 3)
    (tmp_path / "bad.json").write_text("[[[0, 1, 2], [3, 4]]]")
    assert_clean_failure(run_here("denoise", tmp_path / "bad.json", "-o", tmp_path / "o.json", "-m", "gaussian"),
                         "bad.json", "ragged")
    assert_clean_failure(run_here("denoise", track, "-o", tmp_path / "o.json", "-m", "savgol", "-p", "size=3"),
                         "has no option size")
    assert not (tmp_path / "o.json").exists()
    assert_clean_failure(run_here("bench", "single-image", "--out", tmp_path), "needs --data")


def test_train_and_denoise_a_volume_with_ne2ne_3d(tmp_path, noisy_png):
    """`train VOLUME.tif --method ne2ne-3d --axes ZYX` then `denoise VOLUME.tif --model ... --axes ZYX`: a 3-D
    result in the input's form; 2-D images and axes without Z fail in one line."""
    import tifffile

    z, y, x = np.mgrid[0:7, 0:33, 0:37]
    clean = 2000 + 1500 * np.sin(x / 4.0 + z / 3.0) * np.cos(y / 5.0)
    volume = np.random.default_rng(0).poisson(clean).astype(np.uint16)
    tifffile.imwrite(tmp_path / "vol.tif", volume)
    model = tmp_path / "m.sdm"
    r = run_here("train", tmp_path / "vol.tif", "--method", "ne2ne-3d", "--axes", "ZYX", "-o", model, "--steps", "3",
                 "--crop", "16", "--batch", "1", "-p", "widths=8,8,8", "-p", "crop_depth=4", "-q")
    assert r.returncode == 0, r.stderr
    r = run_here("denoise", tmp_path / "vol.tif", "--model", model, "--axes", "ZYX", "-o", tmp_path / "out.tif", "-q")
    assert r.returncode == 0, r.stderr
    out = tifffile.imread(tmp_path / "out.tif")
    assert out.shape == volume.shape and out.dtype == np.uint16
    assert_clean_failure(run_here("denoise", noisy_png, "--model", model, "-o", tmp_path / "x.png"),
                         "a 3-D method needs a volume")
    assert_clean_failure(run_here("denoise", tmp_path / "vol.tif", "--model", model, "--axes", "TYX", "-o",
                                  tmp_path / "x.tif"), "have no Z")
    assert_clean_failure(run_here("train", noisy_png, "--method", "ne2ne-3d", "-o", tmp_path / "y.sdm", "--steps", "1"),
                         "a 3-D method needs a volume")
    assert_clean_failure(run_here("train", "--method", "ne2ne-3d", "-o", tmp_path / "y.sdm", "--steps", "1"),
                         "give the training data")
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.sdm").exists()


def test_noise2noise_on_neighbouring_frames_of_a_time_lapse(tmp_path):
    """`train LAPSE.tif -m n2n --axes TYX`: neighbouring frames are the pairs (no repeated frames needed), then
    the model denoises the time-lapse in its own form."""
    import tifffile

    t, y, x = np.mgrid[0:6, 0:33, 0:37]
    clean = 2000 + 1500 * np.sin((x - t) / 4.0) * np.cos(y / 5.0)  # drifting structure
    lapse = np.random.default_rng(0).poisson(clean).astype(np.uint16)
    tifffile.imwrite(tmp_path / "lapse.tif", lapse)
    model = tmp_path / "m.sdm"
    r = run_here("train", tmp_path / "lapse.tif", "-m", "n2n", "--axes", "TYX", "-o", model, "--steps", "3",
                 "--crop", "16", "--batch", "2")
    assert r.returncode == 0, r.stderr
    import json

    from selfdenoise import api
    assert "neighbouring frames" in json.dumps(api.load_model(model).metadata)
    r = run_here("denoise", tmp_path / "lapse.tif", "--model", model, "--axes", "TYX", "-o", tmp_path / "out.tif", "-q")
    assert r.returncode == 0, r.stderr
    assert tifffile.imread(tmp_path / "out.tif").shape == lapse.shape


def test_self2self_trains_a_prior_on_a_folder_and_fits_an_image_from_it(tmp_path, natural):
    """``train -m self2self`` on noisy images, then ``denoise -m self2self --init`` starts each fit from it; the
    prior alone denoises with --model; --init with --model, or for a method without models, fails in one line."""
    rng = np.random.default_rng(3)
    folder = tmp_path / "noisy"
    folder.mkdir()
    for k, (y, x) in enumerate([(0, 0), (40, 30)]):
        crop = natural[y:y + 41, x:x + 37]
        noisy = np.clip(crop + rng.normal(0, 25 / 255, crop.shape), 0, 1)
        Image.fromarray(np.round(noisy * 255).astype(np.uint8)).save(folder / f"{k}.png")
    net = ("-p", "width=8", "-p", "depth=2", "-p", "passes=2")
    r = run("train", folder, "-m", "self2self", "-o", tmp_path / "prior.sdm", "--steps", "3", "-p", "crop=16",
            "-p", "batch=2", *net, "-q")
    assert r.returncode == 0, r.stderr
    src = folder / "0.png"
    r = run("denoise", src, "-o", tmp_path / "fit.png", "-m", "self2self", "--init", tmp_path / "prior.sdm",
            "-p", "steps=2", *net, "-q")
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(tmp_path / "fit.png")).shape == (41, 37, 3)
    r = run("denoise", src, "-o", tmp_path / "prior.png", "--model", tmp_path / "prior.sdm", "-q")
    assert r.returncode == 0, r.stderr
    r = run("denoise", src, "-o", tmp_path / "x.png", "--model", tmp_path / "prior.sdm", "--init",
            tmp_path / "prior.sdm", "-q")
    assert_clean_failure(r, "--init")
    r = run("denoise", src, "-o", tmp_path / "y.png", "-m", "nlm", "--init", tmp_path / "prior.sdm", "-q")
    assert_clean_failure(r, "init")
    r = run("denoise", src, "-o", tmp_path / "z.png", "--init", tmp_path / "prior.sdm", "-q")  # zero-shot: not its network
    assert_clean_failure(r, "compact UNet")
    assert not any((tmp_path / f"{n}.png").exists() for n in "xyz")


def test_zero_shot_starts_from_a_zoo_model(tmp_path, natural):
    """``denoise --init zoo:gauss-color``: the zoo model's network replaces zero-shot's shipped prior."""
    noisy = np.clip(natural[:45, :39] + np.random.default_rng(4).normal(0, 25 / 255, (45, 39, 3)), 0, 1)
    Image.fromarray(np.round(noisy * 255).astype(np.uint8)).save(tmp_path / "n.png")
    r = run("denoise", tmp_path / "n.png", "-o", tmp_path / "d.png", "--init", "zoo:gauss-color", "-p", "steps=3",
            "-p", "refine=0", "-q")
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(tmp_path / "d.png")).shape == (45, 39, 3)
