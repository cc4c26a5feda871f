import json
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfdenoise import api, bench
from selfdenoise.bench import landmarks_synth, runner
from selfdenoise.bench.protocols import PROTOCOLS
from selfdenoise.core import metrics
from selfdenoise.core.errors import InputError, MissingDependencyError
from selfdenoise.core.io import read_image

FIELDS = ("protocol", "method", "dataset", "n_images", "psnr", "ssim", "epi_correlation", "gcmse",
          "seconds_per_image", "train_seconds", "peak_memory_mb", "device", "command", "commit", "seed",
          "noise", "date", "per_image")
SIZES = [(33, 41), (35, 29), (31, 37)]


@pytest.fixture(autouse=True)
def committed_tree(monkeypatch):
    """Benchmarks refuse a tree with uncommitted changes; these tests run beside work in progress, so
    the commit is a fixed clean one (``test_results_need_a_clean_tree`` checks the refusal itself)."""
    monkeypatch.setattr(runner, "git_commit", lambda: "0" * 40)
    monkeypatch.setattr(landmarks_synth, "git_commit", lambda: "0" * 40)


def texture(h, w, seed):
    """Smooth random texture with edges, uint8 RGB."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([0.5 + 0.3 * np.sin(x / rng.uniform(2, 5) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(2, 5))
                    for _ in range(3)], axis=-1)
    img[h // 3:, w // 2:] += 0.2  # a step edge
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture
def kodak(tmp_path):
    root = tmp_path / "data"
    (root / "kodak24").mkdir(parents=True)
    for i, (h, w) in enumerate(SIZES):
        Image.fromarray(texture(h, w, i)).save(root / "kodak24" / f"kodim{i + 1:02d}.png")
    (root / "kodak24" / "SOURCE.md").write_text("not an image")
    return root


@pytest.fixture
def calls(monkeypatch):
    """Fast stand-in for zero-shot (3x3 box filter); BM3D reported missing; NLM is the real one.
    Records (method, noisy input, options) of every call."""
    from scipy.ndimage import uniform_filter

    seen = []
    real = api.denoise

    def fake(image, method="zero-shot", **kw):
        seen.append((method, np.array(image), kw))
        if method == "zero-shot":
            return uniform_filter(np.clip(image, 0, 1), size=(3, 3, 1)).astype(np.float32)
        if method == "bm3d":
            raise MissingDependencyError("method 'bm3d' needs the optional bm3d package")
        return real(image, method, **kw)

    monkeypatch.setattr(api, "denoise", fake)
    return seen


def load(path):
    return json.loads(Path(path).read_text())


def test_run_protocol_writes_results_for_every_method(kodak, calls, tmp_path):
    out = tmp_path / "res"
    with pytest.warns(UserWarning, match="bm3d"):
        r = bench.run_protocol("single-image", kodak, ["zero-shot"], out_dir=out, command="selfdenoise bench x",
                               progress=False)
    d = out / "single-image"
    assert r["dir"] == str(d)
    assert sorted(p.name for p in d.glob("*.json")) == ["nlm.json", "noisy.json", "zero-shot.json"]
    assert "bm3d" in r["skipped"] and (d / "report.md").exists() and (d / "report.html").exists()
    noisy = load(d / "noisy.json")
    for m in ("zero-shot", "nlm"):
        res = load(d / f"{m}.json")
        assert all(k in res for k in FIELDS), [k for k in FIELDS if k not in res]
        assert res["method"] == m and res["protocol"] == "single-image" and res["dataset"] == "kodak24"
        assert res["n_images"] == 3 and len(res["per_image"]) == 3
        assert [p["name"] for p in res["per_image"]] == ["kodim01", "kodim02", "kodim03"]
        assert res["noise"] == "gauss:25" and res["seed"] == 0 and res["command"] == "selfdenoise bench x"
        assert res["train_seconds"] is None
        assert res["device"].startswith("cpu: ") and "cores" in res["device"]
        assert res["seconds_per_image"] > 0 and res["peak_memory_mb"] > 10
        assert 0 < res["ssim"] <= 1 and res["gcmse"] >= 0
        assert noisy["psnr"] < res["psnr"] < 60  # denoising helps on these smooth textures
        assert res["psnr"] == pytest.approx(np.mean([p["psnr"] for p in res["per_image"]]))
        datetime.fromisoformat(res["date"])
    assert load(d / "nlm.json")["sigma"] == 25 and load(d / "zero-shot.json")["sigma"] == "auto"
    assert 18 < noisy["psnr"] < 24  # sigma 25 on [0, 255] gives about 20 dB


def test_numbers_match_a_direct_recomputation(kodak, calls, tmp_path):
    bench.run_protocol("single-image", kodak, ["zero-shot", "nlm"], out_dir=tmp_path / "r", seed=5,
                       progress=False, baselines=False)
    res = load(tmp_path / "r" / "single-image" / "nlm.json")
    assert res["seed"] == 5
    clean, _ = read_image(kodak / "kodak24" / "kodim02.png")
    noisy = api.add_noise(clean, "gauss:25", seed=5 + 1)
    expected = metrics.evaluate_pair(clean, api.denoise(noisy, "nlm", sigma=25))
    row = res["per_image"][1]
    for k in ("psnr", "ssim", "epi_ratio", "gcmse"):
        assert row[k] == pytest.approx(expected[k], rel=1e-9), k
    # every method saw the same, unclipped noisy input of each image
    inputs = {}
    for method, image, kw in calls[:-1]:  # the last call is the recomputation above
        inputs.setdefault(method, []).append(image)
    assert len(inputs["zero-shot"]) == len(inputs["nlm"]) == 3
    for a, b in zip(inputs["zero-shot"], inputs["nlm"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(inputs["nlm"][1], noisy)
    assert noisy.min() < 0 or noisy.max() > 1


def test_limit_baselines_off_and_method_options(kodak, calls, tmp_path):
    r = bench.run_protocol("single-image", kodak, ["zero-shot"], out_dir=tmp_path, limit=2, progress=False,
                           baselines=False, method_options={"zero-shot": {"budget": 3.5}})
    assert set(r["results"]) == {"zero-shot"} and not (tmp_path / "single-image" / "nlm.json").exists()
    res = load(tmp_path / "single-image" / "zero-shot.json")
    assert res["n_images"] == 2 and res["limit"] == 2 and res["options"] == {"budget": 3.5}
    assert [kw["budget"] for m, _, kw in calls] == [3.5, 3.5]
    assert r["summary"]["zero-shot"]["psnr"] == res["psnr"]


def test_other_dataset_goes_to_its_own_folder(tmp_path, calls):
    root = tmp_path / "data" / "set14"
    root.mkdir(parents=True)
    Image.fromarray(texture(29, 31, 7)).save(root / "baboon.png")
    (root / "extra_gray").mkdir()
    Image.fromarray(texture(29, 31, 8)[..., 0]).save(root / "extra_gray" / "man.png")
    r = bench.run_protocol("gauss25-color", tmp_path / "data", ["zero-shot"], dataset="set14",
                           out_dir=tmp_path / "out", progress=False, baselines=False)
    assert Path(r["dir"]) == tmp_path / "out" / "gauss25-color-set14"
    assert [p["name"] for p in r["results"]["zero-shot"]["per_image"]] == ["baboon"]


def test_user_errors(kodak, tmp_path):
    with pytest.raises(InputError, match="method n2n is trained first: give --train-minutes"):
        bench.run_protocol("gauss25-color", kodak, ["n2n"], out_dir=tmp_path, progress=False)
    with pytest.raises(InputError, match="method ne2ne needs training; protocol 'single-image' has no training"):
        bench.run_protocol("single-image", kodak, ["ne2ne"], out_dir=tmp_path, progress=False,
                           method_options={"ne2ne": {"model": "x.safetensors"}})
    with pytest.raises(InputError, match="unknown protocol"):
        bench.run_protocol("gauss99", kodak, ["nlm"], out_dir=tmp_path, progress=False)
    with pytest.raises(InputError, match="no test dataset 'bsd68'"):
        bench.run_protocol("single-image", kodak, ["nlm"], dataset="bsd68", out_dir=tmp_path, progress=False)
    with pytest.raises(InputError, match="set12"):
        bench.run_protocol("gauss25-gray", kodak, ["nlm"], out_dir=tmp_path, dataset="set12", progress=False)
    assert not list(tmp_path.rglob("*.json"))


def test_protocol_table_covers_benchmarks_md():
    assert set(bench.PROTOCOLS) == {"gauss25-color", "gauss5-50-color", "poisson30-color", "gauss25-gray",
                                    "real-polyu", "real-nam", "oct-duke", "w2s-widefield", "fmd-confocal",
                                    "poisson-3d", "single-image", "landmarks-synth"}
    for name, p in bench.PROTOCOLS.items():  # every image protocol has a validation split, but FMD (W2S settings)
        assert bool(p.validation) == (name not in ("fmd-confocal", "landmarks-synth")), name
    assert [t.name for t in bench.PROTOCOLS["single-image"].test_sets] == ["kodak24"]
    assert [t.name for t in bench.PROTOCOLS["single-image"].validation] == ["mcmaster"]
    assert {t.metric for t in bench.PROTOCOLS["w2s-widefield"].test_sets} == {"scale-invariant"}
    assert bench.PROTOCOLS["oct-duke"].train_clean == "oct_duke_fang2013/0[5-7]/average.tif"
    assert bench.PROTOCOLS["single-image"].train is None
    oct_set = bench.PROTOCOLS["oct-duke"].test_sets[0]
    noisy = Path("/d/oct_duke_fang2013/12/test.tif")
    assert oct_set.clean_path(noisy) == Path("/d/oct_duke_fang2013/12/average.tif")
    assert oct_set.image_name(noisy) == "12" and oct_set.noise is None
    polyu = bench.PROTOCOLS["real-polyu"].test_sets[0]
    p = Path("Canon80D_8_8_3200_ball_16_real.JPG")
    assert polyu.clean_path(p) == Path("Canon80D_8_8_3200_ball_16_mean.JPG")
    assert polyu.image_name(p) == "Canon80D_8_8_3200_ball_16" and polyu.group(polyu.image_name(p)) == "Canon80D"


def test_polyu_pairs_and_per_camera(tmp_path, calls):
    folder = tmp_path / "polyu_real100"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = ["CamA_1_scene_1", "CamA_2_scene_2", "CamB_1_scene_1"]
    for i, name in enumerate(names):
        mean = texture(27, 35, 20 + i)
        real = np.clip(mean + rng.normal(0, 6, mean.shape), 0, 255).astype(np.uint8)
        Image.fromarray(mean).save(folder / f"{name}_mean.JPG", quality=95)
        Image.fromarray(real).save(folder / f"{name}_real.JPG", quality=95)
    r = bench.run_protocol("real-polyu", tmp_path, ["zero-shot"], out_dir=tmp_path / "out", progress=False,
                           baselines=False)
    res = load(Path(r["dir"]) / "zero-shot.json")
    assert res["noise"] == "real" and [p["name"] for p in res["per_image"]] == names
    cams = res["per_camera"]
    assert set(cams) == {"CamA", "CamB"}
    assert cams["CamA"]["n_images"] == 2 and cams["CamB"]["n_images"] == 1
    assert cams["CamA"]["psnr"] == pytest.approx(np.mean([p["psnr"] for p in res["per_image"][:2]]))
    assert cams["CamB"]["ssim"] == pytest.approx(res["per_image"][2]["ssim"])
    # the noisy input is the *_real file itself, scored against *_mean
    noisy = load(Path(r["dir"]) / "noisy.json")
    real, _ = read_image(folder / "CamB_1_scene_1_real.JPG")
    mean, _ = read_image(folder / "CamB_1_scene_1_mean.JPG")
    assert noisy["per_image"][2]["psnr"] == pytest.approx(metrics.evaluate_pair(mean, real)["psnr"])
    np.testing.assert_array_equal(calls[2][1], real)
    assert "Per camera" in (Path(r["dir"]) / "report.md").read_text()


def _save(path, arr):
    Image.fromarray(arr).save(path)


def test_evaluate_folders_matches_by_name(tmp_path):
    import tifffile

    clean_dir, test_dir = tmp_path / "clean", tmp_path / "test"
    clean_dir.mkdir(), test_dir.mkdir()
    imgs = {n: texture(25, 33, i) for i, n in enumerate(["a", "b", "c"])}
    for n, a in imgs.items():
        _save(clean_dir / f"{n}.png", a)
    rng = np.random.default_rng(1)
    noisy_a = np.clip(imgs["a"] + rng.normal(0, 5, imgs["a"].shape), 0, 255).astype(np.uint8)
    noisy_b = np.clip(imgs["b"] + rng.normal(0, 20, imgs["b"].shape), 0, 255).astype(np.uint8)
    tifffile.imwrite(test_dir / "a.tif", noisy_a, photometric="rgb")  # other suffix, same name
    _save(test_dir / "b.png", noisy_b)
    _save(test_dir / "d.png", imgs["c"])  # no clean counterpart
    out_json = tmp_path / "deep" / "eval.json"
    r = bench.evaluate_folders(clean_dir, test_dir, out_json)
    assert [p["name"] for p in r["per_image"]] == ["a", "b"]
    assert r["unmatched_clean"] == ["c"] and r["unmatched_test"] == ["d"]
    pa = metrics.psnr(imgs["a"], noisy_a, data_range=255)
    pb = metrics.psnr(imgs["b"], noisy_b, data_range=255)
    assert r["per_image"][0]["psnr"] == pytest.approx(pa) and r["per_image"][1]["psnr"] == pytest.approx(pb)
    assert r["psnr"] == pytest.approx((pa + pb) / 2) and r["mean"]["psnr"] == r["psnr"]
    assert pa > pb + 6
    assert json.loads(out_json.read_text())["n_images"] == 2
    # two single files are paired whatever their names
    single = bench.evaluate_folders(clean_dir / "b.png", test_dir / "d.png")
    assert single["n_images"] == 1
    assert single["psnr"] == pytest.approx(metrics.psnr(imgs["b"], imgs["c"], data_range=255))


def test_evaluate_folders_errors(tmp_path):
    clean_dir, test_dir = tmp_path / "clean", tmp_path / "test"
    clean_dir.mkdir(), test_dir.mkdir()
    _save(clean_dir / "a.png", texture(25, 33, 0))
    _save(test_dir / "z.png", texture(25, 33, 0))
    with pytest.raises(InputError, match="no image in .* matches"):
        bench.evaluate_folders(clean_dir, test_dir)
    _save(test_dir / "a.png", texture(27, 33, 0))
    with pytest.raises(InputError, match="a.png: shape 27x33x3 differs"):
        bench.evaluate_folders(clean_dir, test_dir)


def test_write_json_is_atomic_and_strict(tmp_path):
    p = bench.write_json(tmp_path / "sub" / "x.json", {"a": math.nan, "b": [1.5, math.inf], "c": np.float32(2)})
    assert json.loads(p.read_text()) == {"a": None, "b": [1.5, None], "c": 2.0}
    assert [f.name for f in p.parent.iterdir()] == ["x.json"]


def test_peak_memory_sees_a_large_allocation():
    mem = bench.PeakMemory()
    if not mem.resettable:
        pytest.skip("peak RSS cannot be reset on this system")
    mem.start()
    base = mem.peak_mb()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    grown = mem.peak_mb()
    del block
    assert grown - base > 50
    mem.start()
    assert mem.peak_mb() < grown - 50


def test_every_keeps_noise_seeds_of_the_whole_set(tmp_path):
    """An image gets the same noisy input whether the run takes the whole set or a subset."""
    import json

    import numpy as np
    from PIL import Image

    from selfdenoise.bench import run_protocol

    data = tmp_path / "data" / "kodak24"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(4):
        Image.fromarray(rng.integers(0, 256, (21, 19, 3), dtype=np.uint8)).save(data / f"kodim{k:02d}.png")
    run_protocol("gauss25-color", tmp_path / "data", ["nlm"], out_dir=tmp_path / "a", progress=False, baselines=False)
    run_protocol("gauss25-color", tmp_path / "data", ["nlm"], out_dir=tmp_path / "b", progress=False, baselines=False,
                 every=2)
    rows = lambda d: {r["name"]: r["psnr"] for r in json.loads((d / "gauss25-color" / "nlm.json").read_text())["per_image"]}
    a, b = rows(tmp_path / "a"), rows(tmp_path / "b")
    assert sorted(b) == ["kodim00", "kodim02"]
    assert all(b[k] == a[k] for k in b)


def test_per_method_options_are_checked_before_any_work(kodak, tmp_path):
    with pytest.raises(InputError, match="method 'nlm' has no option colour"):
        bench.run_protocol("single-image", kodak, ["zero-shot"], out_dir=tmp_path, progress=False,
                           method_options={"nlm": {"colour": 1}})
    with pytest.raises(InputError, match="an option was given for n2n, which is not in this run"):
        bench.run_protocol("single-image", kodak, ["zero-shot"], out_dir=tmp_path, progress=False,
                           method_options={"n2n": {"tta": 2}})
    assert not list(tmp_path.rglob("*.json"))


def test_a_trained_model_file_is_benchmarked_without_training(kodak, tmp_path):
    from selfdenoise.core.params import per_method_params

    model, elsewhere = tmp_path / "n2n.sdm", tmp_path / "elsewhere"
    elsewhere.mkdir()
    for i, (h, w) in enumerate(SIZES):
        Image.fromarray(texture(h, w, 50 + i)).save(elsewhere / f"other{i}.png")
    api.train(elsewhere, "n2n", model, noise="gauss:25", steps=2, batch=2, crop=24, widths=(8, 8, 8))
    options = per_method_params([f"n2n.model={model}", "n2n.tta=2"])
    assert options == {"n2n": {"model": str(model), "tta": 2}}
    r = bench.run_protocol("gauss25-color", kodak, ["n2n"], out_dir=tmp_path / "out", progress=False,
                           baselines=False, method_options=options, limit=1)
    res = r["results"]["n2n"]
    assert res["model_file"] == str(model) and res["options"] == {"tta": 2}
    fit = api.load_model(model).metadata["extra"]["train"]  # how it was trained, from the file
    assert res["train_seconds"] == fit["seconds"] and res["training"]["steps"] == 2 == fit["steps"]
    assert res["training"]["device"] == "cpu" and res["training"]["recipe"]["crop"] == 24
    with pytest.raises(InputError, match="not METHOD.KEY=VALUE"):
        per_method_params(["tta=2"])
    on_tests = tmp_path / "on_tests.sdm"  # a model trained on the test images themselves is refused
    api.train(kodak / "kodak24", "n2n", on_tests, noise="gauss:25", steps=1, batch=2, crop=24, widths=(8, 8, 8))
    with pytest.raises(InputError, match="trained on 3 of the test images .*not transductive"):
        bench.run_protocol("gauss25-color", kodak, ["n2n"], out_dir=tmp_path / "no", progress=False, baselines=False,
                           method_options={"n2n": {"model": str(on_tests)}})


def test_the_zero_shot_prior_may_not_have_seen_the_test_images(kodak, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "prior_training_files", lambda path=None: ["kodak24/kodim02.png", "other/x.png"])
    with pytest.raises(InputError, match="the zero-shot prior trained on 1 of the test images"):
        bench.run_protocol("single-image", kodak, ["zero-shot"], out_dir=tmp_path, progress=False)


def test_a_method_is_trained_in_the_run_with_its_training_settings(kodak, tmp_path, capsys):
    train_dir = kodak / "bsd300_test"
    train_dir.mkdir()
    for i in range(3):
        Image.fromarray(texture(37, 43, 10 + i)).save(train_dir / f"t{i}.png")
    r = bench.run_protocol("gauss25-color", kodak, ["n2n"], out_dir=tmp_path / "out", progress=True, baselines=False,
                           limit=2, train={"steps": 3},
                           method_options={"n2n": {"crop": 24, "batch": 2, "widths": (8, 8, 8), "tta": 2}})
    said = capsys.readouterr().err  # progress lines: the training, each image, the end of the run
    assert "training n2n on" in said and "[2/2]" in said and "(kodak24, 2 images) done" in said
    res = r["results"]["n2n"]
    assert res["options"] == {"widths": (8, 8, 8), "tta": 2, "crop": 24, "batch": 2}
    fit = api.load_model(Path(r["dir"]) / "n2n.sdm").metadata["extra"]["train"]
    assert fit["config"]["crop"] == 24 and fit["config"]["batch"] == 2 and fit["steps"] == 3
    assert res["training"]["steps"] == 3 and [p["step"] for p in res["training"]["curve"]["points"]][-1] == 3
    assert res["training"]["recipe"]["crop"] == 24 and res["training"]["recipe"]["lr"] == 1e-3  # preset + given
    with pytest.raises(InputError, match="method 'n2n' has no option crops"):  # a misspelt setting fails first
        bench.run_protocol("gauss25-color", kodak, ["n2n"], out_dir=tmp_path / "out2", progress=False,
                           baselines=False, train={"steps": 3}, method_options={"n2n": {"crops": 24}})


def test_a_run_killed_after_training_goes_on_with_the_model_it_trained(kodak, tmp_path, monkeypatch, capsys):
    train_dir = kodak / "bsd300_test"
    train_dir.mkdir()
    for i in range(2):
        Image.fromarray(texture(37, 43, 10 + i)).save(train_dir / f"t{i}.png")
    run = lambda out="out": bench.run_protocol("gauss25-color", kodak, ["n2n"], out_dir=tmp_path / out,
                                               progress=True, baselines=False, limit=2, train={"steps": 3},
                                               method_options={"n2n": {"crop": 24, "batch": 2, "widths": (8, 8, 8)}})
    straight = run("straight")["results"]["n2n"]
    real_images = runner._run_images

    def killed(plan):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_run_images", killed)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.setattr(runner, "_run_images", real_images)
    monkeypatch.setattr(api, "train", lambda *a, **k: pytest.fail("trained again"))
    r = run()
    assert "n2n: trained by the interrupted run" in capsys.readouterr().err
    resumed = r["results"]["n2n"]
    assert resumed["training"]["steps"] == 3 and len(resumed["per_image"]) == 2
    points = lambda r: [(p["step"], p["psnr"]) for p in r["training"]["curve"]["points"]]
    assert points(resumed) == points(straight)  # the snapshots were kept
    assert [x["psnr"] for x in resumed["per_image"]] == [x["psnr"] for x in straight["per_image"]]
    assert not (tmp_path / "out" / "gauss25-color" / ".journal").exists()  # finished: the journals are gone


# ----------------------------------------------------------------------------------- protocol v2
def test_results_need_a_clean_tree(kodak, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "git_commit", lambda: "abc123-dirty")
    monkeypatch.setattr(landmarks_synth, "git_commit", lambda: "abc123-dirty")
    with pytest.raises(InputError, match="uncommitted changes"):
        bench.run_protocol("single-image", kodak, ["nlm"], out_dir=tmp_path / "a", progress=False, baselines=False)
    with pytest.raises(InputError, match="uncommitted changes"):
        bench.run_protocol("landmarks-synth", None, None, out_dir=tmp_path / "b", progress=False)
    assert not list(tmp_path.rglob("*.json"))
    r = bench.run_protocol("single-image", kodak, ["nlm"], out_dir=tmp_path / "c", progress=False, baselines=False,
                           limit=1, exploratory=True)
    res = r["results"]["nlm"]
    assert res["exploratory"] is True and res["commit"] == "abc123-dirty" and res["split"] == "test"
    assert res["device"].startswith("cpu: ") and res["python"] and datetime.fromisoformat(res["date"]).tzinfo


POLYU_NAMES = ["Canon5D2_5_160_3200_chair_11", "Canon5D2_5_160_6400_circuit_10", "Sony_4-5_125_3200_door_1",
               "Sony_4-5_125_1600_plant_2"]


def test_validation_and_test_are_disjoint_splits_of_one_folder(tmp_path, calls):
    folder = tmp_path / "polyu_real100"
    folder.mkdir()
    for i, name in enumerate(POLYU_NAMES):
        Image.fromarray(texture(27, 35, 30 + i)).save(folder / f"{name}_mean.JPG", quality=95)
        Image.fromarray(texture(27, 35, 40 + i)).save(folder / f"{name}_real.JPG", quality=95)
    names = {}
    for split, dataset in (("validation", None), ("test", None), ("test", "polyu-all100")):
        r = bench.run_protocol("real-polyu", tmp_path, ["zero-shot"], out_dir=tmp_path / "out", progress=False,
                               baselines=False, split=split, dataset=dataset)
        res = r["results"]["zero-shot"]
        assert res["split"] == split and res["metric"] == "photo"
        names[(split, dataset)] = [p["name"] for p in res["per_image"]]
    assert names[("validation", None)] == [POLYU_NAMES[0], POLYU_NAMES[2]]  # chair (Canon5D2), door (Sony)
    assert names[("test", None)] == [POLYU_NAMES[1], POLYU_NAMES[3]]
    assert names[("test", "polyu-all100")] == sorted(POLYU_NAMES)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "real-polyu", "real-polyu-polyu-all100", "real-polyu-validation"]
    with pytest.raises(InputError, match="no validation split"):
        bench.run_protocol("fmd-confocal", tmp_path, ["nlm"], out_dir=tmp_path / "x", progress=False, split="validation")


def test_microscopy_is_scored_scale_invariant(tmp_path, calls):
    root = tmp_path / "w2s_widefield"
    for sub in ("noisy", "reference"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for fov in ("001_0", "002_1", "011_0"):  # 001-010 validation, 011-040 test
        ref = texture(40, 36, int(fov[:3]))[..., 0]
        noisy = np.clip(0.5 * ref + 60 + rng.normal(0, 12, ref.shape), 0, 255).astype(np.uint8)  # rescaled + noise
        Image.fromarray(ref).save(root / "reference" / f"{fov}.png")
        Image.fromarray(noisy).save(root / "noisy" / f"{fov}.png")
    r = bench.run_protocol("w2s-widefield", tmp_path, ["nlm"], out_dir=tmp_path / "out", progress=False,
                           baselines=False, split="validation")
    res = r["results"]["nlm"]
    assert res["metric"] == "scale-invariant" and [p["name"] for p in res["per_image"]] == ["001_0", "002_1"]
    ref, _ = read_image(root / "reference" / "002_1.png")
    noisy, _ = read_image(root / "noisy" / "002_1.png")
    expected = metrics.evaluate_pair(ref, api.denoise(noisy, "nlm"), "scale-invariant")  # as the CLI runs it
    assert res["per_image"][1]["psnr"] == pytest.approx(expected["psnr"]) and "gcmse" not in res["per_image"][1]
    # the baseline estimates the noise itself (a Poisson-Gaussian fit on fluorescence), never handed one level
    assert all(c[2].get("sigma") in (None, "auto") for c in calls if c[0] == "nlm")
    assert r["noisy"]["per_image"][1]["psnr"] > metrics.evaluate_pair(ref, noisy)["psnr"]  # the fit undoes the rescaling


def test_volume_slices_share_one_noise_draw_and_baselines_get_the_vst(tmp_path, calls):
    import tifffile

    from selfdenoise.bench.protocols import _noisy_volume

    (tmp_path / "nuclei3d").mkdir()
    z, y, x = np.mgrid[0:60, 0:24, 0:20]
    volume = (30000 + 20000 * np.sin(x / 3.0 + z / 9.0) * np.cos(y / 4.0)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "nuclei3d" / "nuclei.tif", volume)
    r = bench.run_protocol("poisson-3d", tmp_path, ["nlm"], out_dir=tmp_path / "out", progress=False,
                           limit=2, seed=4)
    res = r["results"]["nlm"]
    assert [p["name"] for p in res["per_image"]] == ["nuclei_z030", "nuclei_z031"] and res["metric"] == "float"
    assert res["sigma"].startswith("generalized Anscombe VST") and res["noise"] == "poisson:20+gauss:25.5"
    nlm_calls = [c for c in calls if c[0] == "nlm"]
    assert all(c[2]["noise"] == "poisson:20+gauss:25.5" and c[2]["sigma"] == "auto" for c in nlm_calls)
    clean, noisy = _noisy_volume(str(tmp_path / "nuclei3d" / "nuclei.tif"), "poisson:20+gauss:25.5", 4)
    np.testing.assert_array_equal(nlm_calls[1][1], noisy[31])
    assert abs(float((noisy - clean).std()) - np.sqrt(float(clean.mean()) / 20 + 0.1**2)) < 0.01


def test_statistics_report_spread_and_paired_wins(kodak, tmp_path, monkeypatch, calls):
    real = api.denoise  # ``calls`` replaced it; BM3D now returns the noisy input (always beaten)
    monkeypatch.setattr(api, "denoise", lambda image, method="zero-shot", **kw: np.clip(image, 0, 1)
                        if method == "bm3d" else real(image, method, **kw))
    r = bench.run_protocol("single-image", kodak, ["zero-shot"], out_dir=tmp_path, progress=False)
    res = r["results"]["zero-shot"]
    assert res["psnr_sd"] == pytest.approx(np.std([p["psnr"] for p in res["per_image"]], ddof=1))
    assert res["wins"] == {"bm3d": {"wins": 3, "of": 3}} and r["results"]["bm3d"]["wins"] == {}
    assert r["results"]["nlm"]["wins"]["bm3d"]["of"] == 3


def test_gan_noisy_domain_leaves_out_the_eyes_of_its_clean_domain(tmp_path):
    import tifffile

    from selfdenoise.bench.protocols import protocol_training_set
    from selfdenoise.methods.contract import DataNeeds

    for eye in range(1, 10):
        folder = tmp_path / "oct_duke_fang2013" / f"{eye:02d}"
        folder.mkdir(parents=True)
        for frame in ("test", "1", "2", "3", "4", "average"):
            tifffile.imwrite(folder / f"{frame}.tif", texture(20, 24, eye)[..., 0])
    proto = bench.PROTOCOLS["oct-duke"]
    everyone = protocol_training_set(proto, tmp_path, DataNeeds(pairs=True))
    gan = protocol_training_set(proto, tmp_path, DataNeeds(clean=True))
    assert everyone.names == [f"{e:02d}" for e in range(1, 8)] and len(everyone.groups[0]) == 5
    assert gan.names == ["01", "02", "03", "04"]  # the clean domain is the averages of eyes 05-07


FAKE_PEER = '''
import argparse, json
import numpy as np
from scipy.ndimage import uniform_filter
ap = argparse.ArgumentParser()
ap.add_argument("peer"); ap.add_argument("--input"); ap.add_argument("--output"); ap.add_argument("--budget")
ap.add_argument("--seed"); ap.add_argument("--json"); ap.add_argument("--input2")
a = ap.parse_args()
x = np.load(a.input)
np.save(a.output, uniform_filter(x, size=5).astype(np.float32))
json.dump({"peer": a.peer, "versions": {"deepinv": "9.9"}, "config": {"budget": float(a.budget)}}, open(a.json, "w"))
'''


def test_peers_run_in_the_same_run_through_their_own_runner(kodak, tmp_path, monkeypatch, calls):
    import sys

    runner_script = tmp_path / "run_peer.py"
    runner_script.write_text(FAKE_PEER)
    monkeypatch.setenv("SELFDENOISE_PEERS_PYTHON", sys.executable)
    monkeypatch.setenv("SELFDENOISE_PEERS_RUNNER", str(runner_script))
    r = bench.run_protocol("single-image", kodak, ["zero-shot"], out_dir=tmp_path / "out", progress=False,
                           baselines=False, peers=["deepinv-ne2ne"], peer_budget=12)
    peer, ours = r["results"]["deepinv-ne2ne"], r["results"]["zero-shot"]
    assert peer["peer"] == "DeepInverse 9.9" and peer["options"] == {"budget": 12.0} and peer["budget_seconds"] == 12
    clean, _ = read_image(kodak / "kodak24" / "kodim02.png")
    noisy = api.add_noise(clean, "gauss:25", seed=1)
    from scipy.ndimage import uniform_filter
    expected = metrics.evaluate_pair(clean, np.clip(uniform_filter(noisy, size=5), 0, 1))["psnr"]
    assert peer["per_image"][1]["psnr"] == pytest.approx(expected, abs=1e-6)
    assert ours["wins"]["deepinv-ne2ne"]["of"] == 3 and (tmp_path / "out" / "single-image" / "deepinv-ne2ne.json").exists()
    with pytest.raises(InputError, match="unknown peer"):
        bench.run_protocol("single-image", kodak, ["nlm"], out_dir=tmp_path / "x", progress=False, peers=["n2v"])
    monkeypatch.setenv("SELFDENOISE_PEERS_PYTHON", str(tmp_path / "none" / "python"))
    with pytest.raises(InputError, match="make peers"):
        bench.run_protocol("single-image", kodak, ["nlm"], out_dir=tmp_path / "x", progress=False,
                           peers=["careamics-n2v2"])


def test_the_learning_settings_of_methods_that_fit_each_image_stay_their_options():
    """Where a protocol has no training set, self2self (also trainable on a data set) fits each image: its lr,
    crop and init stay its options; where it has one, self2self is trained there like n2n."""
    options = {"self2self": {"lr": 1e-3, "crop": 32, "init": "prior.sdm"}}
    assert runner._check_options(["self2self"], options, PROTOCOLS["single-image"]) == {}
    assert options == {"self2self": {"lr": 1e-3, "crop": 32, "init": "prior.sdm"}}
    options = {"self2self": {"lr": 1e-3, "crop": 32}, "n2n": {"lr": 2e-3, "tta": 2}}
    assert runner._check_options(["self2self", "n2n"], options, PROTOCOLS["gauss25-color"]) == {
        "self2self": {"lr": 1e-3, "crop": 32}, "n2n": {"lr": 2e-3}}
    assert options == {"self2self": {}, "n2n": {"tta": 2}}


def test_a_single_image_run_fits_each_image_from_a_prior_given_as_init(kodak, tmp_path):
    tiny = {"width": 8, "depth": 2, "passes": 1}
    crops = [np.asarray(Image.open(kodak / "kodak24" / "kodim01.png"), dtype=np.float32) / 255]
    prior = api.train(crops, "self2self", tmp_path / "prior.sdm", steps=2, crop=16, batch=2, **tiny)
    r = bench.run_protocol("single-image", kodak, ["self2self"], out_dir=tmp_path / "out", limit=1, progress=False,
                           baselines=False, method_options={"self2self": {"init": prior.path, "steps": 1, **tiny}})
    assert r["results"]["self2self"]["n_images"] == 1
    assert load(tmp_path / "out" / "single-image" / "self2self.json")["options"]["init"] == prior.path


def test_a_failing_image_loses_nothing_and_a_rerun_does_only_what_is_missing(kodak, calls, tmp_path, monkeypatch):
    """zero-shot fails on the second image (a NaN output): the others are scored and written, the result
    says what failed and stays out of the README; the same run again runs only that pair. A run stopped
    half-way (Ctrl-C, kill) resumes from its journal the same way."""
    out = tmp_path / "r"
    fake = api.denoise

    def nan_on_second(image, method="zero-shot", **kw):
        if method == "zero-shot" and image.shape[:2] == SIZES[1]:
            return np.full(image.shape, np.nan, np.float32)
        return fake(image, method, **kw)

    monkeypatch.setattr(api, "denoise", nan_on_second)
    r = bench.run_protocol("single-image", kodak, ["zero-shot"], out_dir=out, progress=False)
    assert [f["name"] for f in r["failed"]["zero-shot"]] == ["kodim02"] and "NaN" in r["failed"]["zero-shot"][0]["error"]
    folder = Path(r["dir"])
    partial = load(folder / "zero-shot.json")
    assert partial["n_images"] == 3 and len(partial["per_image"]) == 2 and partial["failed"]
    assert load(folder / "nlm.json")["per_image"][1]["name"] == "kodim02"
    assert list((folder / ".journal").glob("*.jsonl"))  # kept for the retry
    monkeypatch.setattr(api, "denoise", fake)
    calls.clear()
    r = bench.run_protocol("single-image", kodak, ["zero-shot"], out_dir=out, progress=False)
    assert [(m, image.shape[:2]) for m, image, _ in calls if m != "bm3d"] == [("zero-shot", SIZES[1])]
    assert not r["failed"] and "failed" not in load(folder / "zero-shot.json")
    assert len(load(folder / "zero-shot.json")["per_image"]) == 3 and not (folder / ".journal").exists()

    def stop_at_third(image, method="zero-shot", **kw):
        if image.shape[:2] == SIZES[2]:
            raise KeyboardInterrupt
        return fake(image, method, **kw)

    monkeypatch.setattr(api, "denoise", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        bench.run_protocol("single-image", kodak, ["zero-shot"], out_dir=tmp_path / "k", progress=False)
    monkeypatch.setattr(api, "denoise", fake)
    calls.clear()
    r = bench.run_protocol("single-image", kodak, ["zero-shot"], out_dir=tmp_path / "k", progress=False)
    assert {image.shape[:2] for m, image, _ in calls if m != "bm3d"} == {SIZES[2]}
    assert len(r["results"]["nlm"]["per_image"]) == 3
    again = load(Path(r["dir"]) / "zero-shot.json")
    first = load(folder / "zero-shot.json")
    assert [p["psnr"] for p in again["per_image"]] == [p["psnr"] for p in first["per_image"]]
