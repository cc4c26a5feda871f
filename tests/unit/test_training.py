"""The generic training engine: schedules, exact resume, Ctrl-C checkpoints, logs, time limits."""
import math

import numpy as np
import pytest
import torch

from selfdenoise import api
from selfdenoise.core.errors import InputError
from selfdenoise.methods import ne2ne, registry
from selfdenoise.methods.contract import DataNeeds
from selfdenoise.training import TrainConfig, data, lr_factor, read_checkpoint, train

TINY = {"widths": (8, 8, 8)}


def tiny_set(natural, realisations=1):
    rng = np.random.default_rng(0)
    groups = [[natural[:40, :44] + rng.normal(0, 0.1, (40, 44, 3)).astype(np.float32) for _ in range(realisations)],
              [natural[50:, 40:] + rng.normal(0, 0.1, (46, 56, 3)).astype(np.float32) for _ in range(realisations)]]
    return data.from_arrays(groups)


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def max_diff(a, b):
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.parametrize("schedule,frac,expected", [
    ("constant", 0.7, 1.0),
    ("cosine", 0.0, 1.0), ("cosine", 0.5, 0.5), ("cosine", 1.0, 0.0),
    ("step:0.2:0.5", 0.19, 1.0), ("step:0.2:0.5", 0.2, 0.5), ("step:0.2:0.5", 0.99, 0.0625),
    ("multistep:0.5,0.75:0.1", 0.6, 0.1), ("multistep:0.5,0.75:0.1", 0.8, 0.01),
    # Noise2Noise's ramp-down over the last 30%: (0.5 + cos(pi t) / 2)^2
    ("rampdown:0.3", 0.69, 1.0), ("rampdown:0.3", 0.85, 0.25), ("rampdown:0.3", 1.0, 0.0),
])
def test_schedules_follow_their_formulas(schedule, frac, expected):
    assert lr_factor(schedule, frac) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("bad", ["linear", "step:0.2", "multistep:a:0.1", "rampdown:0"])
def test_bad_schedule_is_one_clear_error(bad):
    with pytest.raises(InputError, match="bad schedule"):
        lr_factor(bad, 0.5)


@pytest.mark.parametrize("name,realisations", [("ne2ne", 1), ("n2n", 2)])
def test_interrupt_then_resume_equals_uninterrupted(tmp_path, natural, name, realisations):
    ts = tiny_set(natural, realisations)
    method = registry.get_method(name, **TINY)
    cfg = TrainConfig(steps=20, batch=2, crop=16, lr=2e-3, schedule="cosine", warmup=0.1)
    straight = weights(train(method, ts, cfg).model)

    def ctrl_c_at_10(step, info):
        if step == 10:
            raise KeyboardInterrupt

    ckpt = tmp_path / "run.checkpoint"
    with pytest.raises(KeyboardInterrupt):
        train(method, ts, cfg, checkpoint=ckpt, on_step=ctrl_c_at_10)
    assert read_checkpoint(ckpt)["step"] == 10
    resumed = train(method, ts, cfg, checkpoint=ckpt, resume=ckpt)
    assert resumed.steps == 20
    assert max_diff(straight, weights(resumed.model)) < 1e-6
    # and the interrupted run really stopped half-way: its weights differ from the final ones
    half = registry.get_method(name, **TINY).build_model(3)
    half.load_state_dict(read_checkpoint(ckpt)["model"])
    assert max_diff(straight, weights(half)) > 1e-4


def test_weight_averaging_returns_the_exponential_moving_average_and_resumes_exactly(tmp_path, natural):
    """``ema``: the raw weights follow the same path as without it; the model returned is their average
    ``a <- 0.8 a + 0.2 w`` after every step (the first step's weights to start), and it resumes exactly."""
    ts = tiny_set(natural)
    method = registry.get_method("ne2ne", **TINY)
    cfg = TrainConfig(steps=12, batch=2, crop=16, lr=2e-3, schedule="constant")
    average = {}

    def follow(step, info):
        for k, w in info["model"].state_dict().items():
            average[k] = w.detach().clone() if k not in average else 0.8 * average[k] + 0.2 * w.detach()

    last = weights(train(method, ts, cfg, on_step=follow).model)
    cfg.ema = 0.8
    straight = weights(train(method, ts, cfg).model)
    assert max_diff(average, straight) < 1e-6 and max_diff(last, straight) > 1e-5

    def ctrl_c_at_5(step, info):
        if step == 5:
            raise KeyboardInterrupt

    ckpt = tmp_path / "run.checkpoint"
    with pytest.raises(KeyboardInterrupt):
        train(method, ts, cfg, checkpoint=ckpt, on_step=ctrl_c_at_5)
    assert read_checkpoint(ckpt)["average"]
    assert max_diff(straight, weights(train(method, ts, cfg, checkpoint=ckpt, resume=ckpt).model)) < 1e-6
    with pytest.raises(InputError, match="ema is a decay"):
        TrainConfig(steps=1, ema=1.0).check()


def test_a_killed_training_continues_from_its_timed_checkpoint_when_the_command_runs_again(tmp_path, natural):
    """A crash (no chance to save: like kill -9) after a timed checkpoint: the same call again continues from
    it and ends where an uninterrupted run ends; the two newest checkpoints exist while it runs."""
    import selfdenoise

    noisy = [natural[:40, :44] + np.random.default_rng(1).normal(0, 0.1, (40, 44, 3)).astype(np.float32)]
    common = dict(method="ne2ne", steps=12, batch=2, crop=16, widths=(8, 8, 8), checkpoint_minutes=1e-6)
    straight = weights(selfdenoise.train(noisy, output=tmp_path / "a.sdm", **common).model.network)
    assert not list(tmp_path.glob("a.sdm.*checkpoint*"))  # finished: checkpoints removed

    def crash_at_7(step, info):
        if step == 7:
            assert (tmp_path / "b.sdm.checkpoint").is_file() and (tmp_path / "b.sdm.checkpoint.previous").is_file()
            raise MemoryError("killed")

    with pytest.raises(MemoryError):
        selfdenoise.train(noisy, output=tmp_path / "b.sdm", on_step=crash_at_7, **common)
    assert read_checkpoint(tmp_path / "b.sdm.checkpoint")["step"] == 6  # written after step 6, before 7 ended
    with pytest.warns(UserWarning, match="continuing the interrupted run from step 6"):
        resumed = selfdenoise.train(noisy, output=tmp_path / "b.sdm", **common)
    assert resumed.steps == 12 and max_diff(straight, weights(resumed.model.network)) < 1e-6
    (tmp_path / "c.sdm.checkpoint").write_bytes(b"torn")  # an unreadable checkpoint: a warning, a fresh start
    with pytest.warns(UserWarning, match="c.sdm.checkpoint"):
        assert selfdenoise.train(noisy, output=tmp_path / "c.sdm", **common).steps == 12


@pytest.mark.parametrize("gan", ["lsgan", "wgan"])
def test_gan_interrupt_then_resume_equals_uninterrupted(tmp_path, natural, gan):
    """Two optimisers (generator and critic), both checkpointed in one file and both resumed exactly."""
    ts = tiny_set(natural).with_clean([natural[10:50, 5:45], natural[60:, :50]])
    make = lambda: registry.get_method("tcfl", gan=gan, depth=3, features=8, critic_features=4, collapse_patience=0)
    cfg = TrainConfig(steps=8, batch=2, crop=16, lr=2e-3, schedule="cosine", betas=(0.5, 0.999))
    straight = weights(train(make(), ts, cfg).model)

    def ctrl_c_at_4(step, info):
        if step == 4:
            raise KeyboardInterrupt

    ckpt = tmp_path / "gan.checkpoint"
    with pytest.raises(KeyboardInterrupt):
        train(make(), ts, cfg, checkpoint=ckpt, on_step=ctrl_c_at_4)
    state = read_checkpoint(ckpt)
    assert state["step"] == 4 and sorted(state["optims"]) == ["critic", "generator"]
    assert all(o["state"] for o in state["optims"].values())
    resumed = train(make(), ts, cfg, checkpoint=ckpt, resume=ckpt)
    assert resumed.steps == 8
    assert max_diff(straight, weights(resumed.model)) < 1e-6
    half = make().build_model(3)
    half.load_state_dict(state["model"])
    critic = [k for k in straight if k.startswith("critic.")]
    assert max(float((straight[k] - weights(half)[k]).abs().max()) for k in critic) > 1e-5  # the critic trained too


def test_a_method_can_stop_training_early_with_a_reason(natural):
    from selfdenoise.methods.contract import StopTraining

    class StopsAtThree(type(registry.get_method("ne2ne"))):
        def training_step(self, batch, model, step, total):
            if step == 3:
                raise StopTraining("enough")
            return super().training_step(batch, model, step, total)

    method = StopsAtThree(**TINY)
    with pytest.warns(UserWarning, match="stopped at step 3: enough"):
        r = train(method, tiny_set(natural), TrainConfig(steps=10, batch=2, crop=16))
    assert r.stopped == "enough" and r.steps == 3 and r.model is not None


def test_a_nan_loss_is_one_line_naming_step_and_learning_rate_and_keeps_the_last_checkpoint(tmp_path, natural):
    from selfdenoise.core.errors import SelfdenoiseError
    from selfdenoise.methods.fitting import fit_single_image
    from selfdenoise.methods.zero_shot import ZeroShot

    class NanAtFour(type(registry.get_method("ne2ne"))):
        def training_step(self, batch, model, step, total):
            out = super().training_step(batch, model, step, total)
            return {**out, "loss": out["loss"] * float("nan")} if step == 4 else out

    cfg = TrainConfig(steps=8, batch=2, crop=16, checkpoint_every=2, lr=1e-3)
    with pytest.raises(SelfdenoiseError, match=r"ne2ne: loss is nan at step 4 \(learning rate \d"):
        train(NanAtFour(**TINY), tiny_set(natural), cfg, checkpoint=tmp_path / "c.ckpt")
    assert read_checkpoint(tmp_path / "c.ckpt")["step"] == 4  # the steps before it are kept

    class NanZeroShot(ZeroShot):
        def training_step(self, batch, model, step, total):
            return {"loss": super().training_step(batch, model, step, total)["loss"] * float("inf")}

    with pytest.raises(SelfdenoiseError, match="zero-shot: loss is inf at step 0"):
        fit_single_image(NanZeroShot(), torch.rand(1, 3, 32, 32), steps=3, lr=1e-3)


def test_periodic_checkpoints_log_and_validation(tmp_path, natural):
    ts = tiny_set(natural)
    method = registry.get_method("ne2ne", **TINY)
    clean = torch.from_numpy(natural[:32, :32].copy()).permute(2, 0, 1)[None]
    val = [(clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)), clean)]
    cfg = TrainConfig(steps=12, batch=2, crop=16, checkpoint_every=5, val_every=6, log_every=3)
    r = train(method, ts, cfg, checkpoint=tmp_path / "c.ckpt", log=tmp_path / "log.csv", val=val)
    assert read_checkpoint(tmp_path / "c.ckpt")["step"] == 10
    lines = (tmp_path / "log.csv").read_text().strip().splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["step", "seconds", "lr", "loss"] and "val_psnr" in header
    rows = [dict(zip(header, l.split(","))) for l in lines[1:]]
    assert [int(r["step"]) for r in rows] == [3, 6, 9, 12]
    assert rows[1]["val_psnr"] and float(rows[1]["val_psnr"]) > 5
    assert r.val_psnr is not None and math.isfinite(r.val_psnr)
    assert r.flops_per_step and r.flops_per_step > 0


def test_time_limit_stops_training(natural):
    r = train(registry.get_method("n2n", **TINY), tiny_set(natural, 2),
              TrainConfig(minutes=1.5 / 60, batch=2, crop=16))
    assert 1.4 < r.seconds < 10 and r.steps >= 1


def test_resume_refuses_another_method_or_junk(tmp_path, natural):
    ts = tiny_set(natural, 2)
    cfg = TrainConfig(steps=3, batch=2, crop=16, checkpoint_every=3)
    train(registry.get_method("n2n", **TINY), ts, cfg, checkpoint=tmp_path / "c.ckpt")
    with pytest.raises(InputError, match="cannot resume 'ne2ne'"):
        train(registry.get_method("ne2ne", **TINY), ts, cfg, resume=tmp_path / "c.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="not a selfdenoise checkpoint"):
        train(registry.get_method("n2n", **TINY), ts, cfg, resume=tmp_path / "junk.ckpt")


def test_bad_configs_fail_before_training(natural):
    ts = tiny_set(natural)
    method = registry.get_method("ne2ne", **TINY)
    with pytest.raises(InputError, match="length of training"):
        train(method, ts, TrainConfig())
    with pytest.raises(InputError, match="smaller than the 64x64 crop"):
        train(method, ts, TrainConfig(steps=1, crop=64))
    with pytest.raises(InputError, match="two noisy realisations"):
        train(registry.get_method("n2n", **TINY), ts, TrainConfig(steps=1, crop=16))


def test_noise2noise_losses(natural):
    m = registry.get_method("n2n", loss="l0", **TINY)
    model = m.build_model(3)
    batch = tiny_set(natural, 2).sample(0, 2, 16, DataNeeds(pairs=True))
    err = (model(batch.noisy) - batch.target).detach()
    # annealed L0: gamma = 2 (1 - step / total)
    for step, gamma in [(0, 2.0), (5, 1.0), (10, 0.0)]:
        expected = (err.abs() + 1e-8).pow(gamma).mean()
        assert float(m.training_step(batch, model, step, 10)["loss"]) == pytest.approx(float(expected), rel=1e-5)
    # masked loss: only observed target pixels count
    l2 = registry.get_method("n2n", **TINY)
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., :8] = 1
    batch.mask = mask
    expected = (err[..., :8]).pow(2).mean()
    assert float(l2.training_step(batch, model, 0, 10)["loss"]) == pytest.approx(float(expected), rel=1e-5)


def test_neighbor2neighbor_ramps_gamma(natural):
    m = registry.get_method("ne2ne", gamma=2.0, **TINY)
    model = m.build_model(3)
    with torch.no_grad():  # a non-identity network so the regulariser is not zero
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    batch = tiny_set(natural).sample(0, 2, 16)
    out0 = m.training_step(batch, model, 0, 10)
    out5 = m.training_step(batch, model, 5, 10)
    assert float(out0["loss"]) == pytest.approx(float(out0["rec"]), rel=1e-6)  # gamma 0 at the start
    assert float(out5["loss"]) == pytest.approx(float(out5["rec"] + 1.0 * out5["reg"]), rel=1e-5)
    assert float(out5["reg"]) > 0


def test_neighbor2neighbor_sub_images_are_never_padded_by_the_network(natural):
    """A 40x40 crop gives 20x20 sub-images, which the compact UNet (multiple 16) would pad: the crop is trimmed
    to 32x32 so the network trains on what it sees at test time on images it does not pad."""
    m = registry.get_method("ne2ne")
    model = m.build_model(3)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    m.training_step(tiny_set(natural).sample(0, 2, 40), model, 5, 10)
    assert seen and all(h % model.multiple == 0 and w % model.multiple == 0 for h, w in seen), seen
    assert (16, 16) in seen
    assert m.presets["fast"]["crop"] // 2 % model.multiple == 0  # the CPU default needs no trimming
    assert ne2ne.unpadded_crop(torch.zeros(1, 1, 10, 70), 32).shape[-2:] == (10, 64)


def test_the_augment_setting_travels_with_the_model_to_test_time(tmp_path, natural):
    from selfdenoise import api

    noisy = [natural[:40, :44] + np.random.default_rng(1).normal(0, 0.1, (40, 44, 3)).astype(np.float32)]
    r = api.train(noisy, "ne2ne", tmp_path / "m.sdm", steps=2, batch=2, crop=16, augment="flips", **TINY)
    model = api.load_model(r.path)
    assert model.metadata["config"]["augment"] == "flips"
    eight = model.denoise(natural[:21, :27], tta=8)  # a flips model averages its 4 mirrors, never a quarter turn
    four = model.denoise(natural[:21, :27], tta=4)
    np.testing.assert_allclose(eight, four, atol=1e-6)
    assert registry.get_method("ne2ne", augment="flips", tta=8).tta == 4
    assert "augment" not in registry.get_method("n2n").config()  # the default keeps older model files valid
    with pytest.raises(InputError, match="tcfl: unknown augment 'spin'"):
        registry.get_method("tcfl", augment="spin")


def test_noise2noise_aligns_moving_frames_before_pairing_them(tmp_path):
    from test_data import shifted_frames

    from selfdenoise import api

    _, noisy = shifted_frames([(0, 0), (2, -3), (-1, 4)])
    frames = [f[0].numpy() for f in noisy]
    r = api.train([frames], "n2n", tmp_path / "m.sdm", steps=2, batch=2, crop=16, **TINY)
    summary = api.load_model(r.path).metadata["extra"]["data"]
    assert summary["registration"] == {"frames_moved": 2, "largest_shift": [-2, 3]} and r.data == summary
    r = api.train([frames], "n2n", tmp_path / "raw.sdm", steps=2, batch=2, crop=16, register=False, **TINY)
    model = api.load_model(r.path)
    assert "registration" not in model.metadata["extra"]["data"] and model.metadata["config"]["register"] is False
    assert "register" not in registry.get_method("n2n").config()  # the default keeps older model files valid


def test_a_training_starts_from_the_weights_of_init_and_refuses_another_network(tmp_path, natural):
    """``init``: the network starts as the given model (an lr of 1e-12 leaves it there), not as a fresh one;
    another method with the same named network (n2n from an ne2ne model) starts from it too; a model of another
    network, channel count or width is one clear error naming it."""
    ts = tiny_set(natural)
    first = api.train(ts, "ne2ne", tmp_path / "first.sdm", steps=4, batch=2, crop=16, lr=2e-3, **TINY)
    start = weights(first.model.network)
    again = api.train(ts, "ne2ne", tmp_path / "again.sdm", steps=2, batch=2, crop=16, lr=1e-12, init=first.path, **TINY)
    fresh = api.train(ts, "ne2ne", tmp_path / "fresh.sdm", steps=2, batch=2, crop=16, lr=1e-12, seed=5, **TINY)
    assert max_diff(start, weights(again.model.network)) < 1e-6
    assert max_diff(start, weights(fresh.model.network)) > 1e-3
    assert api.load_model(again.path).metadata["extra"]["train"]["init"] == first.path
    pairs = data.from_arrays([[natural[:40, :44]] * 2])
    other = api.train(pairs, "n2n", None, steps=1, batch=2, crop=16, lr=1e-12, init=first.path, **TINY)
    assert max_diff(start, weights(other.model.network)) < 1e-6
    for method, options in (("n2n", {"widths": (8, 8, 16)}), ("tcfl", {})):
        with pytest.raises(InputError, match="first.sdm"):
            api.train(pairs, method, None, steps=1, batch=2, crop=16, init=first.path, **options)
    gray = data.from_arrays([[natural[:40, :44, :1]]])
    with pytest.raises(InputError, match="1-channel data"):
        api.train(gray, "ne2ne", None, steps=1, batch=2, crop=16, init=first.path, **TINY)


@pytest.mark.parametrize("name", registry.names("dataset"))
def test_fine_tuning_settings_replace_the_presets_only_from_a_model_and_yield_to_explicit_options(name, tmp_path, natural):
    """A method's ``fine_tuning`` settings are training settings or its own options; ne2ne fine-tunes at its
    lower rate when started from a model (``init``), trains at the preset's without one, and an explicit
    ``lr`` wins over both."""
    cls = registry.method_class(name)
    assert set(cls.fine_tuning) <= set(api.TRAIN_KEYS) | set(registry.method_options(name)), cls.fine_tuning
    if name != "ne2ne":
        return
    ts = tiny_set(natural)
    first = api.train(ts, "ne2ne", tmp_path / "first.sdm", steps=1, batch=2, crop=16, **TINY)

    def lr(result):
        return result.model.metadata["extra"]["train"]["config"]["lr"]

    assert lr(first) == cls.presets["fast"]["lr"] != cls.fine_tuning["lr"]
    assert lr(api.train(ts, "ne2ne", None, steps=1, batch=2, crop=16, init=first.path, **TINY)) == cls.fine_tuning["lr"]
    assert lr(api.train(ts, "ne2ne", None, steps=1, batch=2, crop=16, lr=2e-3, init=first.path, **TINY)) == 2e-3
