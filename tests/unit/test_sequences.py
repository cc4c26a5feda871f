"""Sequences (frames x points x coords): IO, validation, smoothers, Self2Self-1D, the landmarks benchmark."""
import json
import math

import numpy as np
import pytest
import torch

import selfdenoise
from selfdenoise.bench import landmarks_synth, runner
from selfdenoise.core.errors import InputError
from selfdenoise.methods.self2self_1d import (
    Self2Self1D,
    interpolate_dropped,
    self2self_loss,
)
from selfdenoise.sequences import smoothers
from selfdenoise.sequences.landmarks import synth_track
from selfdenoise.sequences.tracks import (
    MIN_FRAMES,
    check_sequence,
    fill_gaps,
    find_outlier_frames,
    gap_summary,
    read_sequence,
    spline_fill,
    write_sequence,
)


@pytest.fixture(autouse=True)
def committed_tree(monkeypatch):
    """Benchmarks refuse a tree with uncommitted changes; these tests run beside work in progress, so
    the commit is a fixed clean one (``test_results_need_a_clean_tree`` checks the refusal itself)."""
    monkeypatch.setattr(runner, "git_commit", lambda: "0" * 40)
    monkeypatch.setattr(landmarks_synth, "git_commit", lambda: "0" * 40)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tensors here are tiny: one thread avoids thread start-up and contention costs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small_track():
    """A short, small synthetic track: 96 frames x 16 points x 3, with gaps and outliers."""
    return synth_track(seed=4, frames=96, points=16, outlier_rate=0.04, dropout_runs=2)


def observed_rmse(clean, estimate):
    return smoothers.rmse(clean, estimate)  # NaN entries of the estimate are left out


# ------------------------------------------------------------------------------------------------- IO

@pytest.mark.parametrize("suffix", [".json", ".csv", ".npy"])
def test_round_trip_keeps_values_and_gaps(tmp_path, suffix):
    seq = np.random.default_rng(0).normal(size=(9, 4, 3))
    seq[2] = np.nan  # a missing frame
    seq[5, 1, 2] = np.nan  # one missing value
    write_sequence(tmp_path / f"s{suffix}", seq)
    back, info = read_sequence(tmp_path / f"s{suffix}")
    assert back.shape == seq.shape
    np.testing.assert_array_equal(np.isnan(back), np.isnan(seq))
    np.testing.assert_allclose(back[~np.isnan(seq)], seq[~np.isnan(seq)], rtol=1e-12)
    assert not list(tmp_path.glob("*.part"))


def test_json_reads_mediapipe_lists_and_null_frames(tmp_path):
    frames = [[[0.1 * f, 0.2, 0.3], [0.4, 0.5, 0.6]] for f in range(10)]
    frames[3] = None
    frames[4] = []
    (tmp_path / "t.json").write_text(json.dumps(frames))
    seq, _ = read_sequence(tmp_path / "t.json")
    assert seq.shape == (10, 2, 3)
    assert np.isnan(seq[3]).all() and np.isnan(seq[4]).all() and seq[5, 0, 0] == pytest.approx(0.5)


def test_csv_layout_and_frame_column(tmp_path):
    rows = ["frame,p0_x,p0_y,p1_x,p1_y"] + [f"{i},{i},{2 * i},{'' if i == 3 else i},{i}" for i in range(8)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    seq, info = read_sequence(tmp_path / "t.csv")
    assert seq.shape == (8, 2, 2) and info.frame_column
    assert seq[3, 0, 1] == 6 and np.isnan(seq[3, 1, 0])
    write_sequence(tmp_path / "o.csv", seq, info)
    assert (tmp_path / "o.csv").read_text().splitlines()[0] == "frame,p0_x,p0_y,p1_x,p1_y"


def test_npy_keeps_float32(tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((10, 3, 3), np.float32))
    seq, info = read_sequence(tmp_path / "t.npy")
    write_sequence(tmp_path / "o.npy", seq, info)
    assert np.load(tmp_path / "o.npy").dtype == np.float32


@pytest.mark.parametrize("content, words", [
    ([[[0, 1, 2], [3, 4]]] * 10, "ragged"),
    ([[[0, 1, 2]]] * 5 + [[[0, 1, 2], [3, 4, 5]]] * 5, "ragged"),
    ([[[0, 1, 2]]] * (MIN_FRAMES - 1), f"at least {MIN_FRAMES}"),
    ([[[0, None, 2], [1, 1, 1]]] * 10, "point 0 coordinate 1 is missing"),
    ([[0, 1, 2]] * 10, "frames x points x coords"),
    ({"frames": []}, "non-empty list"),
    ([[["a", 1, 2]]] * 10, "numbers or null"),
])
def test_bad_json_fails_with_one_line(tmp_path, content, words):
    (tmp_path / "bad.json").write_text(json.dumps(content))
    with pytest.raises(InputError, match=words) as e:
        read_sequence(tmp_path / "bad.json")
    assert "\n" not in str(e.value) and "bad.json" in str(e.value)


def test_bad_arrays_and_files(tmp_path):
    with pytest.raises(InputError, match="3 axes"):
        check_sequence(np.zeros((20, 6)))
    with pytest.raises(InputError, match="every value is missing"):
        check_sequence(np.full((10, 2, 3), np.nan))
    with pytest.raises(InputError, match="Inf"):
        check_sequence(np.full((10, 2, 3), np.inf))
    with pytest.raises(InputError, match="ragged"):
        check_sequence(np.array([np.zeros((2, 3)), np.zeros((3, 3))] * 5, dtype=object))
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="unexpected column 'a'"):
        read_sequence(tmp_path / "bad.csv")
    (tmp_path / "rag.csv").write_text("p0_x,p0_y\n" + "1,2\n" * 8 + "1\n")
    with pytest.raises(InputError, match="row 10 has 1 cells"):
        read_sequence(tmp_path / "rag.csv")
    with pytest.raises(InputError, match="no such file"):
        read_sequence(tmp_path / "none.json")


def test_gaps_are_counted_and_filled():
    seq = np.arange(30, dtype=float).reshape(10, 1, 3)
    seq[2:4] = np.nan
    seq[0, 0, 1] = np.nan
    assert gap_summary(seq) == {"missing_values": 7, "missing_frames": 2, "missing_frame_runs": 1,
                                "partly_missing_frames": 1}
    filled = fill_gaps(seq)
    np.testing.assert_allclose(filled[:, 0, 0], np.arange(0, 30, 3))  # linear in time
    assert filled[0, 0, 1] == 4  # nearest value before the first observation


def test_spline_fill_follows_curvature_and_holds_the_ends():
    t = np.arange(30.0)
    values = np.stack([0.01 * t**2, np.sin(t / 4)], axis=1)
    observed = np.ones_like(values, bool)
    observed[10:16] = False  # a run of missing frames
    observed[:3, 1] = False  # one channel missing at the start
    filled = spline_fill(np.where(observed, values, np.nan), observed)
    np.testing.assert_allclose(filled[10:16, 0], values[10:16, 0], atol=1e-9)  # a parabola is exact
    assert np.abs(filled[10:16, 1] - values[10:16, 1]).max() < 0.02
    assert (filled[:3, 1] == values[3, 1]).all() and np.array_equal(filled[observed], values[observed])


# ------------------------------------------------------------------------------------------ smoothers

def test_one_euro_matches_the_paper_formula_by_hand():
    """x = 0, 1, 1 at 10 Hz, min_cutoff 1, beta 0.5, d_cutoff 1 (Casiez et al. 2012, eqs. 4-6)."""
    out = smoothers.one_euro(np.array([0.0, 1.0, 1.0] + [1.0] * 5).reshape(-1, 1, 1), min_cutoff=1.0, beta=0.5,
                             d_cutoff=1.0, fps=10.0)[:, 0, 0]
    te = 0.1
    alpha = lambda fc: 1 / (1 + 1 / (2 * math.pi * fc * te))  # noqa: E731
    dx1 = alpha(1.0) * (1 - 0) / te
    x1 = alpha(1 + 0.5 * dx1) * 1.0
    dx2 = alpha(1.0) * (1 - x1) / te + (1 - alpha(1.0)) * dx1
    x2 = alpha(1 + 0.5 * dx2) * 1.0 + (1 - alpha(1 + 0.5 * dx2)) * x1
    assert out[0] == 0.0
    assert out[1] == pytest.approx(x1, abs=1e-12) and x1 == pytest.approx(0.647957, abs=1e-6)
    assert out[2] == pytest.approx(x2, abs=1e-12)
    # beta = 0: a plain first-order low-pass at min_cutoff
    lp = smoothers.one_euro(np.array([0.0, 1.0] + [1.0] * 6).reshape(-1, 1, 1), min_cutoff=2.0, beta=0.0, fps=10.0)
    assert lp[1, 0, 0] == pytest.approx(alpha(2.0))


@pytest.mark.parametrize("name, params", [("savgol", {"window": 9, "polyorder": 2}), ("gaussian", {"sigma": 2.0}),
                                          ("one-euro", {"min_cutoff": 2.0, "beta": 100.0})])
def test_smoothers_reduce_error_and_fill_gaps(small_track, name, params):
    noisy, clean, _ = small_track
    out = smoothers.SMOOTHERS[name](noisy, **params)
    assert out.shape == noisy.shape and not np.isnan(out).any()
    seen = ~np.isnan(noisy)
    assert smoothers.rmse(clean[seen], out[seen]) < 0.9 * smoothers.rmse(clean[seen], noisy[seen])


def test_tune_picks_the_best_of_the_grid(small_track):
    noisy, clean, _ = small_track
    params, err = smoothers.tune("gaussian", noisy, clean, grid={"sigma": [0.3, 2.0, 40.0]})
    assert params == {"sigma": 2.0, "outlier_threshold": None}
    assert err == pytest.approx(smoothers.rmse(clean, smoothers.gaussian(noisy, 2.0)))


def test_smoothers_can_reject_outlier_frames_like_self2self(small_track):
    noisy, clean, info = small_track
    bad = sorted(set(info["outlier_frames"]) - set(info["missing_frames"]))
    plain = smoothers.savgol(noisy, 9, 2)
    rejected = smoothers.savgol(noisy, 9, 2, outlier_threshold=5.0)
    assert smoothers.rmse(clean[bad], rejected[bad]) < 0.75 * smoothers.rmse(clean[bad], plain[bad])
    params, _ = smoothers.tune("savgol", noisy, clean, grid={"window": [9], "polyorder": [2],
                                                             "outlier_threshold": [None, 5.0]})
    assert params["outlier_threshold"] == 5.0


def test_outlier_frames_are_found(small_track):
    noisy, _, info = small_track
    found = set(find_outlier_frames(noisy).tolist())
    truth = set(info["outlier_frames"]) - set(info["missing_frames"])
    assert truth and truth <= found and len(found) <= len(truth) + 3


# ---------------------------------------------------------------------------------------- Self2Self-1D

def test_dropped_entries_are_interpolated_from_kept_ones_only():
    x = torch.tensor([[1.0, 2, 30, 4, 5, 60]])
    keep = torch.tensor([[0.0, 1, 0, 0, 1, 0]])
    assert interpolate_dropped(x, keep).tolist() == [[2.0, 2, 3, 4, 5, 5]]


def test_loss_ignores_missing_and_kept_entries():
    x = torch.randn(1, 4, 12)
    observed = torch.ones_like(x)
    observed[0, 1, 3:6] = 0
    keep = (torch.rand_like(x) > 0.5).float() * observed
    out = torch.randn_like(x, requires_grad=True)
    loss = self2self_loss(out, x, keep, observed)
    loss.backward()
    assert (out.grad[(keep > 0) | (observed == 0)] == 0).all()
    changed = x.clone()
    changed[observed == 0] = 1e6
    assert self2self_loss(out, changed, keep, observed) == loss


def test_self2self_lowers_rmse_and_fills_gaps():
    # 60 points: enough channels for the low-rank code to pay off (478 on a real face)
    noisy, clean, info = synth_track(seed=4, frames=128, points=60, outlier_rate=0.03, dropout_runs=2)
    out = selfdenoise.denoise_sequence(noisy, "self2self", seed=0, steps=60, ensemble=8)
    assert out.shape == noisy.shape and out.dtype == np.float32 and not np.isnan(out).any()
    before, after = observed_rmse(clean, noisy), observed_rmse(clean, out)
    assert after < 0.65 * before, (before, after)
    gap = info["missing_frames"]
    assert gap and smoothers.rmse(clean[gap], out[gap]) < 2 * before  # a mean fill would be ~10x worse


def test_self2self_is_seeded_and_reports(small_track):
    noisy, _, _ = small_track
    a, info = Self2Self1D(steps=5, ensemble=2).fit_denoise(noisy, seed=1)
    b, _ = Self2Self1D(steps=5, ensemble=2).fit_denoise(noisy, seed=1)
    np.testing.assert_array_equal(a, b)
    assert info["steps"] == 5 and info["filled_values"] >= np.isnan(noisy).sum() and math.isfinite(info["final_loss"])


def test_api_errors_are_one_line(small_track):
    noisy, _, _ = small_track
    with pytest.raises(InputError, match="unknown sequence method 'nlm'"):
        selfdenoise.denoise_sequence(noisy, "nlm")
    with pytest.raises(InputError, match="has no option window"):
        selfdenoise.denoise_sequence(noisy, "self2self", window=3)
    with pytest.raises(InputError, match="drop must be in"):
        selfdenoise.denoise_sequence(noisy, "self2self", drop=1.5)


# -------------------------------------------------------------------------------------------- benchmark

def test_landmarks_benchmark_writes_results(tmp_path):
    from selfdenoise.bench.landmarks_synth import run_landmarks

    r = run_landmarks(["self2self"], out_dir=tmp_path, tracks=2, frames=48, points=10, progress=False,
                      method_options={"self2self": {"steps": 5, "ensemble": 2}}, command="test")
    folder = tmp_path / "landmarks-synth"
    for name in ("self2self", "savgol", "gaussian", "one-euro", "noisy"):
        res = json.loads((folder / f"{name}.json").read_text())
        assert res["rmse"] > 0 and res["command"] == "test" and "commit" in res and "device" in res
        assert res["test_seeds"] == [0, 1] and res["tune_seed"] not in res["test_seeds"]
    assert json.loads((folder / "savgol.json").read_text())["tuning"]["params"]["window"] >= 5
    assert (folder / "trajectory.png").stat().st_size > 1000 and "trajectory.png" in (folder / "report.md").read_text()
    assert r["summary"]["self2self"]["seconds_per_track"] > 0


def test_bench_dispatches_landmarks_without_data(monkeypatch, tmp_path):
    from selfdenoise import bench
    from selfdenoise.bench import landmarks_synth, runner

    calls = []
    monkeypatch.setattr(runner, "run_landmarks", lambda methods, **kw: calls.append((methods, kw)) or {})
    bench.run_protocol("landmarks-synth", None, None, out_dir=tmp_path, limit=3, seed=7, progress=False)
    assert calls[0][0] == ["self2self"] and calls[0][1]["tracks"] == 3 and calls[0][1]["seed"] == 7
    bench.run_protocol("landmarks-synth", None, None, out_dir=tmp_path, limit=0, progress=False)
    assert calls[1][1]["tracks"] == 0  # passed on, not replaced by the default
    monkeypatch.undo()
    with pytest.raises(InputError, match="at least 1"):
        landmarks_synth.run_landmarks(out_dir=tmp_path, tracks=0, progress=False)
    with pytest.raises(InputError, match="needs --data"):
        bench.run_protocol("single-image", None, ["nlm"], out_dir=tmp_path, progress=False)
