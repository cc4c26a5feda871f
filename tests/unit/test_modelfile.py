import json
import struct

import pytest
import torch

from selfdenoise.core.errors import InputError
from selfdenoise.methods import registry
from selfdenoise.modelfile import FORMAT, load_model, read_metadata, save_model

CONFIG = {"use_prior": False, "tta": 1}


def saved(tmp_path, channels=3):
    method = registry.get_method("zero-shot", **CONFIG)
    model = method.build_model(channels)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # not the initialisation: loading must restore these
    path = save_model(tmp_path / "m.sdm", model, method="zero-shot", channels=channels, config=CONFIG,
                      extra={"noise": "gauss:25"})
    return path, model


def test_roundtrip_restores_weights_and_metadata(tmp_path):
    path, model = saved(tmp_path)
    method, loaded, meta = load_model(path)
    assert meta["method"] == "zero-shot" and meta["channels"] == 3 and meta["config"] == CONFIG
    assert meta["extra"] == {"noise": "gauss:25"} and meta["format"] == FORMAT
    assert meta["parameters"] == sum(p.numel() for p in model.state_dict().values())
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.rand(1, 3, 24, 20)
    assert torch.allclose(method.denoise(loaded, x), method.denoise(model.eval(), x))


def test_file_is_plain_safetensors_not_a_pickle(tmp_path):
    path, _ = saved(tmp_path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])  # a JSON header, then raw tensor bytes
    assert header["__metadata__"]["format"] == FORMAT
    assert not raw.startswith(b"\x80") and b"PK\x03\x04" not in raw[:4]  # no pickle, no torch zip archive


def test_bad_model_files(tmp_path):
    with pytest.raises(InputError, match="no such model file"):
        read_metadata(tmp_path / "missing.sdm")
    (tmp_path / "junk.sdm").write_bytes(b"definitely not a model")
    with pytest.raises(InputError, match="not a selfdenoise model file"):
        read_metadata(tmp_path / "junk.sdm")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(InputError, match="format None"):
        read_metadata(tmp_path / "foreign.safetensors")
    other = torch.nn.Conv2d(3, 3, 3)
    save_model(tmp_path / "wrong.sdm", other, method="zero-shot", channels=3, config=CONFIG)
    with pytest.raises(InputError, match="weights do not fit"):
        load_model(tmp_path / "wrong.sdm")


def test_interrupted_save_leaves_the_old_file(tmp_path, monkeypatch):
    path, _ = saved(tmp_path)
    before = path.read_bytes()
    from selfdenoise import modelfile

    def crash(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(modelfile, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save_model(path, torch.nn.Linear(2, 2), method="zero-shot", channels=3)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.sdm"]
