"""Fault injection on real processes: `selfdenoise train` and `selfdenoise bench` killed with SIGKILL (no
chance to save anything) at five random points, each time resumed by running the same command again. At most
one checkpoint interval of work is lost at each kill, and the end equals the uninterrupted run's. A full disk
(a file-size limit on the process) gives one line, exit 2 and no partial file.

The kill tests start fourteen processes (about a minute): they are marked ``faults`` and run by ``make faults``
(CI runs it after ``make test``), not by the default test run."""
import json
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file

from selfdenoise.training import read_checkpoint

KILLS = 5
INTERVAL = 0.3  # seconds between timed checkpoints in these runs
SLACK = 0.7  # one step, the checkpoint write and the polling, on a busy 2-core machine
#: a bench whose code counts as committed: the tree under test may hold uncommitted changes
BENCH = ("import sys; from selfdenoise.bench import runner; runner.git_commit = lambda *a: '0' * 40; "
         "from selfdenoise.cli import main; main(sys.argv[1:], prog_name='selfdenoise')")


def command(*args):
    head = [sys.executable, "-c", BENCH] if args[0] == "bench" else [sys.executable, "-m", "selfdenoise"]
    return [*head, *map(str, args)]


def size(*paths) -> int:
    """Bytes written so far to ``paths`` (files or folders, missing ones count 0)."""
    total = 0
    for p in paths:
        try:
            files = [p] if p.is_file() else list(p.rglob("*")) if p.is_dir() else []
            total += sum(f.stat().st_size for f in files if f.is_file())
        except FileNotFoundError:  # removed while we looked: the run finishing
            pass
    return total


def start(cmd) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(proc, done, what: str) -> float:
    """Poll until ``done()``; the time it happened. Fails if the process ends first."""
    deadline = time.time() + 120
    while not done():
        if proc.poll() is not None or time.time() > deadline:
            raise AssertionError(f"exit {proc.returncode} before {what}: {proc.stderr.read()[-500:]}")
        time.sleep(0.002)
    return time.time()


def uninterrupted(cmd, progress) -> int:
    """Run ``cmd`` to the end; the most bytes its ``progress`` files held (its whole work, in bytes)."""
    proc, peak = start(cmd), 0
    while proc.poll() is None:
        peak = max(peak, size(*progress))
        time.sleep(0.002)
    assert proc.returncode == 0, proc.stderr.read()
    return peak


def kill_at_random_points(cmd, progress, peak, rng, after_kill) -> None:
    """SIGKILL the run at five random points of its progress (between 5 % and 95 % of the bytes its progress
    files reach), running the same command again after each; ``after_kill(began, killed)`` checks what
    survived (``began``: when that process first made progress)."""
    for target in sorted(rng.uniform(0.05, 0.95, KILLS) * peak):
        before = size(*progress)
        proc = start(cmd)
        began = wait_for(proc, lambda: size(*progress) > before, "making progress")
        wait_for(proc, lambda: size(*progress) >= target, f"its kill point ({target:.0f} bytes of progress)")
        time.sleep(rng.uniform(0.0, 0.05))  # inside whatever it is doing now
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        after_kill(began, time.time())


@pytest.fixture
def noisy_folder(tmp_path, natural):
    rng = np.random.default_rng(0)
    folder = tmp_path / "noisy"
    folder.mkdir()
    for k, crop in enumerate([natural[:40, :44], natural[50:, 40:]]):
        noisy = np.clip(crop + rng.normal(0, 0.1, crop.shape), 0, 1)
        Image.fromarray(np.round(noisy * 255).astype(np.uint8)).save(folder / f"{k}.png")
    return folder


@pytest.mark.faults
def test_train_killed_at_five_random_points_ends_with_the_uninterrupted_weights(tmp_path, noisy_folder):
    def train(name):
        return command("train", "-m", "ne2ne", "--data", noisy_folder, "-o", tmp_path / name, "--steps", 150,
                       "--batch", 2, "--crop", 16, "-p", "widths=8,8,8", "--checkpoint-minutes", INTERVAL / 60, "-q")

    peak = uninterrupted(train("straight.sdm"), [tmp_path / "straight.sdm.log.csv"])
    model, checkpoint = tmp_path / "killed.sdm", tmp_path / "killed.sdm.checkpoint"
    steps = [0]

    def after_kill(began, killed):
        assert not model.exists()
        saved = checkpoint if checkpoint.exists() else tmp_path / "killed.sdm.checkpoint.previous"
        lost = killed - max(saved.stat().st_mtime if saved.exists() else 0.0, began)
        assert lost <= INTERVAL + SLACK, f"{lost:.2f} s of training lost"
        steps.append(read_checkpoint(saved)["step"] if saved.exists() else 0)
        assert steps[-1] >= steps[-2]

    kill_at_random_points(train("killed.sdm"), [tmp_path / "killed.sdm.log.csv"], peak, np.random.default_rng(7),
                          after_kill)
    assert steps[-1] > 0
    done = subprocess.run(train("killed.sdm"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "continuing the interrupted run from step" in done.stderr
    straight, resumed = load_file(tmp_path / "straight.sdm"), load_file(model)
    assert straight.keys() == resumed.keys()
    assert max(float(np.abs(straight[k] - resumed[k]).max()) for k in straight) < 1e-6
    assert not list(tmp_path.glob("*checkpoint*")) and not list(tmp_path.glob(".*.part"))


def texture(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([0.5 + 0.3 * np.sin(x / rng.uniform(2, 5) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(2, 5))
                    for _ in range(3)], axis=-1)
    img[h // 3:, w // 2:] += 0.2
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture
def protocol_data(tmp_path):
    """gauss25-color in miniature: four test photos and three training photos."""
    root = tmp_path / "data"
    for folder, names, seed in (("kodak24", [f"kodim{i:02d}" for i in range(1, 5)], 0),
                                ("bsd300_test", ["t1", "t2", "t3"], 20)):
        (root / folder).mkdir(parents=True)
        for k, name in enumerate(names):
            Image.fromarray(texture(36 + 2 * k, 45 - k, seed + k)).save(root / folder / f"{name}.png")
    return root


@pytest.mark.faults
def test_bench_killed_at_five_random_points_ends_with_the_uninterrupted_figures(tmp_path, protocol_data):
    def bench(out):
        return command("bench", "gauss25-color", "--data", protocol_data, "--methods", "ne2ne", "--out", out,
                       "--train-steps", 100, "--checkpoint-minutes", INTERVAL / 60, "-p", "ne2ne.widths=8,8,8",
                       "-p", "ne2ne.crop=16", "-p", "ne2ne.batch=2", "-q")

    def watched(out):  # the training log and the journal grow as the run goes
        return [out / "gauss25-color" / "ne2ne.train.csv", out / "gauss25-color" / ".journal"]

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    peak = uninterrupted(bench(straight), watched(straight))
    journal = killed / "gauss25-color" / ".journal"
    kept = [0]

    def after_kill(began, _):
        rows = sum(len(f.read_text().splitlines()) for f in journal.glob("*.jsonl")) if journal.is_dir() else 0
        assert rows >= kept[-1]  # what was recorded stays recorded
        kept.append(rows)

    kill_at_random_points(bench(killed), watched(killed), peak, np.random.default_rng(11), after_kill)
    done = subprocess.run(bench(killed), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for method in ("ne2ne", "nlm", "bm3d", "noisy"):
        a = json_of(straight / "gauss25-color" / f"{method}.json")
        b = json_of(killed / "gauss25-color" / f"{method}.json")
        assert [r["name"] for r in a["per_image"]] == [r["name"] for r in b["per_image"]]
        # to 1e-3 dB: trained weights are equal to 1e-6, and BM3D's FFT plans differ from process to process
        assert np.allclose([r["psnr"] for r in a["per_image"]], [r["psnr"] for r in b["per_image"]], atol=1e-3, rtol=0)
    assert not journal.exists() and not list(killed.rglob("*.part")) and not list(killed.rglob("*checkpoint*"))


def json_of(path):
    return json.loads(path.read_text())


def limit_file_size(nbytes):
    """A full disk, as a process sees it: writes past ``nbytes`` fail with EFBIG (Python ignores SIGXFSZ)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))


@pytest.mark.parametrize("what", ["train", "denoise", "bench"])
def test_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path, noisy_folder, protocol_data, what):
    out = tmp_path / "out"
    out.mkdir()
    if what == "train":
        cmd = command("train", "-m", "ne2ne", "--data", noisy_folder, "-o", out / "m.sdm", "--steps", 3, "--batch", 2,
                      "--crop", 16, "-p", "widths=8,8,8", "--log", tmp_path / "log.csv", "-q")
    elif what == "denoise":
        cmd = command("denoise", noisy_folder / "1.png", "-o", out / "d.tif", "-m", "nlm", "--sigma", 10, "-q")
    else:
        cmd = command("bench", "single-image", "--data", protocol_data, "--methods", "nlm", "--limit", 2, "--out", out,
                      "-q")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, preexec_fn=limit_file_size(5000))
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "File too large" in lines[0] and str(out) in lines[0]
    left = [f for f in out.rglob("*") if f.is_file()]
    assert not [f for f in left if f.name.endswith(".part")]  # no temporary file
    if what != "bench":
        assert not left  # nothing partial
    for f in left:  # the bench keeps what it finished: complete files only
        if f.suffix in (".json", ".jsonl"):
            [json.loads(line) for line in f.read_text().splitlines()] if f.suffix == ".jsonl" else json_of(f)
