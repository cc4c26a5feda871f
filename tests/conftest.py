import numpy as np
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def rgb():
    """A smooth, odd-sized RGB test image in [0, 1]."""
    y, x = np.mgrid[0:37, 0:31].astype(np.float32)
    img = np.stack([0.5 + 0.4 * np.sin(x / 5), 0.5 + 0.4 * np.cos(y / 7), (x + y) / 70.0], axis=-1)
    return img.astype(np.float32)


@pytest.fixture
def natural():
    """A natural image crop shipped by scikit-image (96x96 RGB, float [0, 1])."""
    from skimage import data

    return (data.astronaut()[120:216, 180:276] / 255.0).astype(np.float32)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny gray ne2ne model file with non-initial weights (saved in well under a second)."""
    from selfdenoise.methods import registry
    from selfdenoise.modelfile import save_model

    method = registry.get_method("ne2ne")
    net = method.build_model(1)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return save_model(tmp_path_factory.mktemp("model") / "tiny.sdm", net, method="ne2ne", channels=1,
                      config=method.config())


def save_perturbed(path, method: str, channels: int = 1, scale: float = 0.05, **config):
    """A model file of ``method`` whose weights are seeded random steps away from the initial ones (an
    initial network may be an identity, which a broken path would not show)."""
    from selfdenoise.methods import registry
    from selfdenoise.modelfile import save_model

    m = registry.get_method(method, **config)
    net = m.build_model(channels)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * scale)
    save_model(path, net, method=method, channels=channels, config=m.config())
    return path, net


@pytest.fixture(scope="session")
def perturbed():
    """``save_perturbed``, for tests to make small model files of any method."""
    return save_perturbed


@pytest.fixture(scope="module")
def volume_model(tmp_path_factory):
    """A tiny ne2ne-3d model file with non-initial weights."""
    return save_perturbed(tmp_path_factory.mktemp("vol") / "vol.sdm", "ne2ne-3d", widths=[4, 8, 8])[0]
