"""Training data: layouts on disk, checks before training, reproducible and shardable batches."""
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from selfdenoise.core.augment import AUGMENT_MODES, flip_rotate
from selfdenoise.core.errors import InputError
from selfdenoise.methods.contract import DataNeeds
from selfdenoise.training import data
from selfdenoise.training.registration import frame_shift, register_group


def save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)).save(path)


@pytest.fixture
def folder(tmp_path, natural):
    for i in range(3):
        save(tmp_path / "imgs" / f"im{i}.png", np.roll(natural, 7 * i, axis=0))
    return tmp_path / "imgs"


def test_plain_folder_is_single_realisations(folder):
    ts = data.load_folder(folder)
    assert ts.layout == "images" and len(ts.groups) == 3 and ts.max_realisations() == 1
    assert ts.channels == 3 and ts.groups[0][0].shape == (3, 96, 96)


def test_pairs_folders_are_matched_by_name(tmp_path, natural):
    for sub in ("a", "b"):
        for name in ("x.png", "y.png"):
            save(tmp_path / sub / name, natural)
    ts = data.load_folder(tmp_path)
    assert ts.layout.startswith("pairs") and ts.names == ["x.png", "y.png"] and ts.max_realisations() == 2
    (tmp_path / "b" / "y.png").unlink()
    with pytest.raises(InputError, match="no partner"):
        data.load_folder(tmp_path)


def test_subfolders_and_stacks_are_groups_of_frames(tmp_path, natural):
    for s in ("s1", "s2"):
        for k in range(3):
            save(tmp_path / "groups" / s / f"{k}.png", natural)
    ts = data.load_folder(tmp_path / "groups")
    assert len(ts.groups) == 2 and ts.max_realisations() == 3
    gray = (natural.mean(-1) * 65535).astype(np.uint16)
    (tmp_path / "stacks").mkdir()
    tifffile.imwrite(tmp_path / "stacks" / "burst.tif", np.stack([gray] * 5))
    ts = data.load_folder(tmp_path / "stacks")
    assert ts.layout.startswith("stacks") and ts.max_realisations() == 5 and ts.channels == 1


def test_time_lapses_and_z_stacks_pair_neighbouring_frames_only(tmp_path):
    frames = np.random.default_rng(0).random((2, 4, 20, 22)).astype(np.float32)  # T, Z, Y, X
    np.save(tmp_path / "tz.npy", frames)
    ts = data.load_folder(tmp_path / "tz.npy", axes="TZYX")  # one file, not only a folder
    assert ts.layout.startswith("neighbouring") and len(ts.groups) == 2 * 3 and ts.max_realisations() == 2
    pairs = [(g[0][0].numpy(), g[1][0].numpy()) for g in ts.groups]
    expected = [(frames[t, z], frames[t, z + 1]) for t in range(2) for z in range(3)]  # never z 3 with z 0 of t 1
    assert all(np.allclose(a, x) and np.allclose(b, y) for (a, b), (x, y) in zip(pairs, expected))
    np.save(tmp_path / "t.npy", frames[0])
    assert len(data.load_folder(tmp_path / "t.npy", axes="TYX").groups) == 3
    assert data.load_folder(tmp_path / "t.npy").max_realisations() == 4  # no axes: repeated frames of one scene


def test_every_bad_file_is_found_before_training(folder):
    (folder / "im1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(InputError, match=r"1 of 3 training file\(s\) cannot be read: .*im1.png"):
        data.load_folder(folder)


def test_empty_folder_mixed_channels_and_missing_folder(tmp_path, natural, folder):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        data.load_folder(tmp_path / "empty")
    save(folder / "gray.png", natural.mean(-1))
    with pytest.raises(InputError, match="mix channel counts"):
        data.load_folder(folder)
    with pytest.raises(InputError, match="no such training folder"):
        data.load_folder(tmp_path / "nope")


PAIRS = DataNeeds(pairs=True)


def test_batches_are_reproducible_and_shard_exactly(natural):
    ts = data.from_arrays([natural, natural[::-1].copy()], noise="gauss:25")
    a = ts.sample(3, 4, 32, PAIRS, seed=1)
    b = ts.sample(3, 4, 32, PAIRS, seed=1)
    assert torch.equal(a.noisy, b.noisy) and torch.equal(a.target, b.target)
    assert not torch.equal(a.noisy, a.target)  # independent draws of the noise
    assert not torch.equal(a.noisy, ts.sample(4, 4, 32, PAIRS, seed=1).noisy)
    halves = [ts.sample(3, 2, 32, PAIRS, seed=1, rank=r) for r in (0, 1)]
    assert torch.equal(torch.cat([h.noisy for h in halves]), a.noisy)
    assert torch.equal(torch.cat([h.target for h in halves]), a.target)


def test_bernoulli_targets_carry_their_mask(natural):
    ts = data.from_arrays([natural], noise="bernoulli:0.5")
    b = ts.sample(0, 2, 16, PAIRS)
    assert b.mask is not None and b.mask.shape == (2, 1, 16, 16)
    assert 0.2 < float(b.mask.mean()) < 0.8


def test_averaged_targets_are_the_mean_of_the_other_frames():
    frames = [np.full((11, 13, 1), k / 10, np.float32) for k in range(5)]  # frame k holds the value k/10
    ts = data.from_arrays([frames])
    every = ts.sample(0, 6, 8, DataNeeds(pairs=True, target_frames=0))  # all other frames: input + 4 * target = sum of all
    np.testing.assert_allclose((every.noisy + 4 * every.target).numpy(), 1.0, atol=1e-6)
    one = ts.sample(0, 6, 8, PAIRS)
    assert torch.equal(one.noisy, every.noisy)  # the input draw does not depend on the target count
    frame_values = torch.tensor([k / 10 for k in range(5)])
    assert torch.isin(one.target, frame_values).all() and not torch.equal(one.noisy, one.target)
    two = ts.sample(0, 6, 8, DataNeeds(pairs=True, target_frames=2))
    assert torch.equal(two.noisy, every.noisy) and not torch.equal(two.target, every.target)


def test_averaged_synthetic_targets_have_less_noise(natural):
    ts = data.from_arrays([natural], noise="gauss:25")
    one = ts.sample(0, 4, 48, PAIRS)
    four = ts.sample(0, 4, 48, DataNeeds(pairs=True, target_frames=4))
    assert torch.equal(one.noisy, four.noisy)
    clean_estimate = one.noisy - one.target  # difference of two draws: variance 2 sigma^2
    ratio = float((four.noisy - four.target).var() / clean_estimate.var())  # (1 + 1/4) / 2
    assert 0.55 < ratio < 0.70, ratio


def test_target_averaging_and_single_frame_groups_are_checked_before_training(natural):
    with pytest.raises(InputError, match="cannot be averaged"):
        data.from_arrays([natural], noise="bernoulli:0.5").check(16, DataNeeds(pairs=True, target_frames=2))
    with pytest.raises(InputError, match="needs real repeated frames"):
        data.from_arrays([natural], noise="gauss:25").check(16, DataNeeds(pairs=True, target_frames=0))
    with pytest.raises(InputError, match="1 group\\(s\\) with a single frame"):
        data.from_arrays([[natural, natural], [natural]]).check(16, PAIRS)
    from selfdenoise.methods import registry

    with pytest.raises(InputError, match="need the l2 loss"):
        registry.get_method("n2n", loss="l1", target_frames=4)


def test_flips_keep_the_axes_and_dihedral_also_rotates():
    rows = np.repeat(np.linspace(0, 1, 23, dtype=np.float32)[:, None, None], 29, axis=1)  # each row constant
    ts = data.from_arrays([rows])
    for augment, rotated in (("flips", False), ("none", False), ("dihedral", True)):
        b = ts.sample(0, 16, 12, DataNeeds(augment=augment)).noisy[:, 0]
        row_constant = (b - b[:, :, :1]).abs().amax(dim=(1, 2)) < 1e-6
        assert bool(row_constant.all()) != rotated, augment  # a quarter turn makes the columns constant
    x = torch.arange(15.0).reshape(1, 3, 5)
    mirrors = [flip_rotate(x, k) for k in AUGMENT_MODES["flips"]]
    expected = [x, x.flip(-1), x.flip(-2), x.flip(-2, -1)]
    assert all(torch.equal(m, e) for m, e in zip(mirrors, expected))
    none = ts.sample(3, 4, 12, DataNeeds(augment="none")).noisy[:, 0]
    assert bool((none[:, 1:] >= none[:, :-1]).all())  # never mirrored: rows still increase downwards
    with pytest.raises(InputError, match="unknown augment 'rot'"):
        ts.sample(0, 2, 12, DataNeeds(augment="rot"))


def shifted_frames(shifts, sigma=0.2, seed=0):
    """Noisy (1, 71, 83) views of one gray scene, frame k cut ``shifts[k]`` (rows, columns) further in."""
    from skimage import data as skdata

    scene = skdata.camera()[150:250, 150:260].astype(np.float32) / 255
    rng = np.random.default_rng(seed)
    clean = [scene[12 + dy:12 + dy + 71, 13 + dx:13 + dx + 83] for dy, dx in shifts]
    noisy = [np.clip(c + rng.normal(0, sigma, c.shape), 0, 1).astype(np.float32) for c in clean]
    return [torch.from_numpy(c)[None] for c in clean], [torch.from_numpy(n)[None] for n in noisy]


def test_frame_shift_finds_the_motion_between_noisy_frames_and_nothing_in_flat_noise():
    moves = [(0, 0), (3, -5), (-4, 2), (7, 7), (-1, 0)]
    _, noisy = shifted_frames(moves)
    assert [frame_shift(noisy[0], f) for f in noisy] == [(-dy, -dx) for dy, dx in moves]
    rng = np.random.default_rng(1)
    flat = [torch.from_numpy(rng.normal(0.5, 0.2, (1, 41, 37)).astype(np.float32)) for _ in range(4)]
    assert [frame_shift(flat[0], f) for f in flat[1:]] == [(0, 0)] * 3


def test_registered_groups_are_aligned_crops_of_the_common_overlap():
    moves = [(0, 0), (3, -5), (-4, 2)]
    clean, noisy = shifted_frames(moves)
    aligned, shifts = register_group(noisy)
    assert shifts == [(0, 0), (-3, 5), (4, -2)]
    assert all(a.shape == (1, 71 - 7, 83 - 7) for a in aligned)  # the overlap: rows 3..67, columns 2..78 of frame 0
    # moved, not resampled: each is a crop of its own noisy frame, and the clean crops are the same pixels
    windows = [(slice(None), slice(3 + dy, 67 + dy), slice(2 + dx, 78 + dx)) for dy, dx in shifts]
    assert all(torch.equal(a, n[w]) for a, n, w in zip(aligned, noisy, windows))
    assert all(torch.equal(clean[0][windows[0]], c[w]) for c, w in zip(clean, windows))
    ts = data.from_arrays([[n[0].numpy() for n in noisy], [n[0].numpy() for n in noisy[:1] * 2]]).registered()
    assert ts.summary()["registration"] == {"frames_moved": 2, "largest_shift": [-3, 5]}
    assert ts.groups[1][0].shape == (1, 71, 83)  # identical frames: not moved, not cropped
    synthetic = data.from_arrays([noisy[0][0].numpy()], noise="gaussian:25")
    assert synthetic.registered() is synthetic
