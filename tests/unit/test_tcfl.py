"""TCFL: the triplet paths and losses against the paper's equations, the collapse detector, and the
unpaired clean domain of the training data."""

import numpy as np
import pytest
import torch
from torch import nn

from selfdenoise.core.errors import InputError
from selfdenoise.methods import registry
from selfdenoise.methods.contract import Batch, DataNeeds, StopTraining
from selfdenoise.training import TrainConfig, data, train

CLEAN = DataNeeds(clean=True)
TINY = {"depth": 4, "features": 8, "critic_features": 8}


class Scale(nn.Module):
    """G(x) = w * x^2: input-dependent and nonlinear, so a wrong swap gives different numbers."""

    def __init__(self, w=0.3):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x):
        return self.w * x * x


def tiny_images(seed=0, n=3, shape=(23, 27)):
    rng = np.random.default_rng(seed)
    return [rng.random(shape).astype(np.float32) for _ in range(n)]


def test_triplet_paths_follow_the_paper():
    method = registry.get_method("tcfl", **TINY)
    g = torch.Generator().manual_seed(0)
    A, B, C = (torch.rand(2, 1, 5, 7, generator=g) for _ in range(3))
    G = Scale()
    t = method.triplet(G, A, B, C)
    N_A, N_B = 0.3 * A * A, 0.3 * B * B
    assert torch.allclose(t["C_A1"], A - N_A) and torch.allclose(t["C_B1"], B - N_B)
    # cross fusion: A's clean estimate carries B's noise, and the other way round
    I_A, I_B = A - N_A + N_B, B - N_B + N_A
    assert torch.allclose(t["C_A2"], I_A - 0.3 * I_A * I_A)
    assert torch.allclose(t["C_B2"], I_B - 0.3 * I_B * I_B)
    unswapped = A - N_A + N_A
    assert not torch.allclose(t["C_A2"], unswapped - 0.3 * unswapped * unswapped)
    # clean to noisy to clean
    assert torch.allclose(t["C_C1"], (C + N_A) - 0.3 * (C + N_A) ** 2)
    assert torch.allclose(t["C_C2"], (C + N_B) - 0.3 * (C + N_B) ** 2)
    expected = sum((x - y).abs().mean() for x, y in [(t["C_A1"], t["C_A2"]), (t["C_B1"], t["C_B2"]),
                                                       (t["C_C1"], C), (t["C_C2"], C)])
    assert torch.allclose(method.pixel_loss(t, C), expected)


def test_a_constant_generator_zeroes_the_consistency_loss():
    """The failure the reproduction reports: G(x) = 0 makes every L1 term vanish."""
    method = registry.get_method("tcfl", **TINY)
    A, B, C = torch.rand(3, 2, 1, 9, 11).unbind(0)
    t = method.triplet(lambda x: torch.zeros_like(x), A, B, C)
    assert float(method.pixel_loss(t, C)) == 0.0


def test_lsgan_and_wgan_losses_on_known_scores():
    real = torch.tensor([[[[0.5, 1.5]]]])
    fakes = [torch.tensor([[[[0.2, 0.4]]]]), torch.tensor([[[[1.0, 0.0]]]])]
    lsgan = registry.get_method("tcfl", **TINY)
    # generator: sum over fakes of mean (D - 1)^2
    assert float(lsgan.generator_gan_loss(fakes)) == pytest.approx((0.64 + 0.36) / 2 + (0 + 1) / 2)
    # critic: mean (D(C) - 1)^2 + 0.1 * sum of mean D(f)^2 (the official weights)
    assert float(lsgan.critic_loss(real, fakes)) == pytest.approx(0.25 + 0.1 * ((0.04 + 0.16) / 2 + 0.5))
    wgan = registry.get_method("tcfl", gan="wgan", **TINY)
    assert float(wgan.generator_gan_loss(fakes)) == pytest.approx(-(0.3 + 0.5) / 2)
    assert float(wgan.critic_loss(real, fakes)) == pytest.approx((0.3 + 0.5) / 2 - 1.0)
    assert lsgan.pixel_weight == 6 and wgan.pixel_weight == 25


def test_paper_preset_is_the_official_schedule():
    paper = registry.method_class("tcfl").presets["paper"]
    assert paper["lr"] == 2e-5 and paper["betas"] == (0.5, 0.999) and paper["schedule"] == "constant"
    assert paper["batch"] == 2
    net = registry.get_method("tcfl").build_model(1)
    convs = [m for m in net.generator.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 10 and all(c.out_channels == 64 for c in convs[:-1])
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.generator.modules()) == 8


def test_training_step_returns_both_losses_and_inference_subtracts_the_noise():
    method = registry.get_method("tcfl", **TINY)
    model = method.build_model(1)
    A = torch.rand(3, 1, 18, 20)
    out = method.training_step(Batch(noisy=A, extra={"clean": torch.rand(3, 1, 18, 20)}), model, 0, 1)
    assert out["loss"].requires_grad and out["critic_loss"].requires_grad
    # the critic's loss reaches only the critic
    grads = torch.autograd.grad(out["critic_loss"], list(model.generator.parameters()), allow_unused=True)
    assert all(g is None for g in grads)
    with pytest.raises(InputError, match="clean"):
        method.training_step(Batch(noisy=A), model, 0, 1)
    y = torch.rand(1, 1, 19, 23)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(method.denoise(model, y), y - model.generator(y), atol=1e-6)


def test_collapse_detector_stops_training_without_the_adversarial_term():
    rng = np.random.default_rng(0)
    clean = [np.clip(0.5 + 0.3 * np.sin(np.arange(37)[:, None] / (3 + i)) + 0 * np.arange(41), 0, 1).astype(np.float32)
             for i in range(2)]
    ts = data.from_arrays([(c + rng.normal(0, 0.2, c.shape)).astype(np.float32) for c in clean]).with_clean(
        [np.flipud(clean[0]).copy()])
    method = registry.get_method("tcfl", depth=4, features=16, critic_features=8, adversarial_weight=0.0,
                                 collapse_ratio=0.05, collapse_patience=5)
    cfg = TrainConfig(steps=150, batch=2, crop=16, lr=1e-2, schedule="constant")
    with pytest.warns(UserWarning, match="collapsed"):
        r = train(method, ts, cfg, device="cpu")
    assert r.stopped and "collapsed" in r.stopped and r.steps < 150
    assert r.model is not None


def test_collapse_detector_needs_equal_noise_for_patience_steps():
    method = registry.get_method("tcfl", collapse_ratio=0.01, collapse_patience=3, **TINY)
    A, B = torch.rand(2, 2, 1, 8, 8).unbind(0)
    same = torch.full_like(A, 0.1)
    for _ in range(10):  # a healthy generator: the noises differ like the inputs
        method.check_collapse(A, B, A - 0.5, B - 0.5)
    method.check_collapse(A, B, same, same)
    method.check_collapse(A, B, same, same)
    method.check_collapse(A, B, A - 0.5, B - 0.5)  # the count restarts
    method.check_collapse(A, B, same, same)
    method.check_collapse(A, B, same, same)
    with pytest.raises(StopTraining, match="collapsed"):
        method.check_collapse(A, B, same, same + 1e-5)


def test_wgan_clips_the_critic_after_each_step():
    ts = data.from_arrays(tiny_images()).with_clean(tiny_images(1, 2, (25, 21)))
    method = registry.get_method("tcfl", gan="wgan", critic_clip=1e-3, collapse_patience=0, **TINY)
    r = train(method, ts, TrainConfig(steps=2, batch=2, crop=16, lr=1e-2), device="cpu")
    assert max(float(p.detach().abs().max()) for p in r.model.critic.parameters()) <= 1e-3 + 1e-9
    assert max(float(p.detach().abs().max()) for p in r.model.generator.parameters()) > 1e-3


def test_clean_domain_sampling_is_deterministic_and_leaves_the_noisy_draws_alone():
    noisy = data.from_arrays(tiny_images(0, 3, (23, 27)))
    ts = noisy.with_clean(tiny_images(1, 2, (25, 21)) + [tiny_images(2, 1, (19, 30))[0]])
    a = ts.sample(4, 4, 16, CLEAN, seed=7)
    b = ts.sample(4, 4, 16, CLEAN, seed=7)
    assert a.extra["clean"].shape == (4, 1, 16, 16)
    assert torch.equal(a.extra["clean"], b.extra["clean"]) and torch.equal(a.noisy, b.noisy)
    assert not torch.equal(a.extra["clean"], ts.sample(5, 4, 16, CLEAN, seed=7).extra["clean"])
    assert torch.equal(a.noisy, noisy.sample(4, 4, 16, seed=7).noisy)
    # two processes each take half of the same global batch
    halves = [ts.sample(4, 2, 16, CLEAN, seed=7, rank=r).extra["clean"] for r in range(2)]
    assert torch.equal(torch.cat(halves), a.extra["clean"])
    # every clean crop comes from a clean image, never from a noisy one
    sources = [torch.from_numpy(x)[None] for x in tiny_images(1, 2, (25, 21)) + [tiny_images(2, 1, (19, 30))[0]]]
    for crop in a.extra["clean"]:
        values = set(crop.flatten().tolist())
        assert any(values <= set(s.flatten().tolist()) for s in sources)


def test_a_method_needing_clean_images_fails_in_one_line_without_them():
    ts = data.from_arrays(tiny_images())
    with pytest.raises(InputError, match="unpaired clean images") as e:
        train(registry.get_method("tcfl", **TINY), ts, TrainConfig(steps=1, batch=2, crop=16), device="cpu")
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="channel"):
        ts.with_clean([np.zeros((20, 20, 3), np.float32)])
    with pytest.raises(InputError, match="smaller than the 24x24 crop"):
        ts.with_clean([np.zeros((20, 30), np.float32)]).check(24, DataNeeds())


def test_load_clean_folder_reads_8_and_16_bit_tiffs(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    (tmp_path / "sub").mkdir()
    tifffile.imwrite(tmp_path / "a.tif", np.full((17, 19), 255, np.uint8))
    tifffile.imwrite(tmp_path / "sub" / "b.tif", np.full((21, 18), 65535 // 2, np.uint16))
    images, names = data.load_clean_folder(tmp_path)
    assert names == ["a.tif", "sub/b.tif"]
    assert images[0].shape == (17, 19, 1) and float(images[0].max()) == pytest.approx(1.0)
    assert float(images[1].mean()) == pytest.approx(0.5, abs=1e-3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no clean images"):
        data.load_clean_folder(tmp_path / "empty")
