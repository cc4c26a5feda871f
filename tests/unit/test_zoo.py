"""The model zoo: shipped entries are complete and load; ``zoo:NAME`` works wherever a model file does."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from selfdenoise import api, zoo
from selfdenoise.cli import main
from selfdenoise.core.errors import InputError

MAX_BYTES = 5_000_000


@pytest.fixture
def tiny_zoo(tmp_path, monkeypatch, perturbed):
    """A zoo of one tiny ne2ne model whose entry asks for one Wiener pass."""
    perturbed(tmp_path / "tiny.safetensors", "ne2ne", scale=0.01, widths=[8, 16, 16])
    entry = {"method": "ne2ne", "channels": 1, "file": "tiny.safetensors", "summary": "a test model",
             "options": {"refine": 1}, "validation": {"with_options": {"psnr": 30.0, "images": 3}}}
    (tmp_path / "zoo.json").write_text(json.dumps({"tiny": entry}))
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    monkeypatch.setattr(zoo, "MANIFEST", tmp_path / "zoo.json")
    return tmp_path


def test_a_zoo_name_loads_with_its_validated_options_and_per_call_ones_on_top(tiny_zoo):
    model = api.load_model("zoo:tiny")
    assert model.method.refine == 1 and model.path == "zoo:tiny" and model.options == {"refine": 1}
    noisy = np.random.default_rng(0).random((40, 44), dtype=np.float32)
    plain = api.load_model(tiny_zoo / "tiny.safetensors")
    assert plain.method.refine == 0
    np.testing.assert_array_equal(model.denoise(noisy), plain.denoise(noisy, refine=1))
    assert model._inference(1, None, None, {"tta": 2}).refine == 1  # a per-call option keeps the entry's


def test_cli_lists_shows_and_denoises_with_a_zoo_model(tiny_zoo, tmp_path):
    runner = CliRunner()
    listed = runner.invoke(main, ["models"])
    assert listed.exit_code == 0 and listed.output.startswith("zoo:tiny") and "a test model" in listed.output
    shown = runner.invoke(main, ["models", "zoo:tiny"])
    assert shown.exit_code == 0 and json.loads(shown.output)["options"] == {"refine": 1}
    assert "ne2ne" in runner.invoke(main, ["info", "zoo:tiny"]).output
    np.save(tmp_path / "in.npy", np.random.default_rng(1).random((33, 35), dtype=np.float32))
    done = runner.invoke(main, ["denoise", str(tmp_path / "in.npy"), "-o", str(tmp_path / "out.npy"),
                                "--model", "zoo:tiny", "-q"])
    assert done.exit_code == 0, done.output
    expected = api.load_model("zoo:tiny").denoise(np.load(tmp_path / "in.npy"))
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-6)


def test_cli_training_starts_from_a_zoo_model(tiny_zoo, tmp_path):
    """``selfdenoise train --init zoo:NAME`` fine-tunes the shipped network: with a negligible learning rate
    the model written is the zoo model's network, with the same options."""
    folder = tmp_path / "data"
    folder.mkdir()
    for k in range(2):
        np.save(folder / f"{k}.npy", np.random.default_rng(k).random((36, 40), dtype=np.float32))
    out = tmp_path / "tuned.sdm"
    done = CliRunner().invoke(main, ["train", "-m", "ne2ne", "--data", str(folder), "-o", str(out), "--init", "zoo:tiny",
                                     "--steps", "2", "--batch", "2", "--crop", "16", "--lr", "1e-12", "-p",
                                     "widths=8,16,16", "-q"])
    assert done.exit_code == 0, done.output
    start, tuned = api.load_model("zoo:tiny").network.state_dict(), api.load_model(out).network.state_dict()
    assert max(float((start[k] - tuned[k]).abs().max()) for k in start) < 1e-6
    refused = CliRunner().invoke(main, ["train", "-m", "ne2ne", "--data", str(folder), "-o", str(tmp_path / "x.sdm"),
                                        "--init", "zoo:tiny", "--steps", "1", "-q"])  # default widths: another network
    assert refused.exit_code == 2 and "zoo:tiny" in refused.output and len(refused.output.strip().splitlines()) == 1


def test_an_unknown_zoo_name_is_one_line(tiny_zoo):
    with pytest.raises(InputError, match=r"zoo:nope: no such zoo model \(known: tiny"):
        api.load_model("zoo:nope")
    result = CliRunner().invoke(main, ["models", "nope"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("name", sorted(zoo.entries()) or [pytest.param(None, marks=pytest.mark.skip("no zoo"))])
def test_every_shipped_model_is_complete_small_and_loads(name):
    entry = zoo.entries()[name]
    for key in ("method", "channels", "file", "summary", "options", "data", "data_terms", "seed", "command",
                "train_seconds", "validation", "validation_split", "held_out", "commit"):
        assert key in entry, key
    path = zoo.ZOO_DIR / entry["file"]
    assert path.stat().st_size <= MAX_BYTES
    model = api.load_model(f"zoo:{name}")
    assert model.metadata["method"] == entry["method"] and model.channels == entry["channels"]
    out = model.denoise(np.full((40, 48), 0.5, np.float32) if entry["channels"] == 1 else
                        np.full((40, 48, 3), 0.5, np.float32))
    assert np.isfinite(out).all()
