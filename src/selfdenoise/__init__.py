"""selfdenoise: learn to denoise from noisy data alone.

>>> import selfdenoise
>>> clean = selfdenoise.denoise(noisy)                 # zero-shot: this image alone
>>> clean = selfdenoise.denoise(noisy, method="bm3d", sigma=25)
>>> selfdenoise.train("photos/", method="ne2ne", output="ne2ne.sdm", minutes=30)
>>> clean = selfdenoise.load_model("ne2ne.sdm").denoise(noisy)
"""
from .api import TrainedModel, add_noise, denoise, denoise_file, estimate_sigma, evaluate, load_model, train
from .api import denoise_sequence, denoise_sequence_file
from .errors import InputError, MissingDependencyError, SelfdenoiseError
from .io import read_image, write_image
from .modelfile import save_model

__version__ = "0.1.0"

__all__ = [
    "denoise", "denoise_file", "add_noise", "evaluate", "estimate_sigma", "read_image", "write_image", "load_model", "save_model", "train",
    "TrainedModel", "denoise_sequence", "denoise_sequence_file",
    "SelfdenoiseError", "InputError", "MissingDependencyError", "__version__",
]
