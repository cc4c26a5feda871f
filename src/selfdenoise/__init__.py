"""selfdenoise: learn to denoise from noisy data alone.

>>> import selfdenoise
>>> clean = selfdenoise.denoise(noisy)                 # zero-shot: this image alone
>>> clean = selfdenoise.denoise(noisy, method="bm3d", sigma=25)
"""
from .api import add_noise, denoise, denoise_file, estimate_sigma, evaluate
from .errors import InputError, MissingDependencyError, SelfdenoiseError
from .io import read_image, write_image
from .modelfile import load_model, save_model

__version__ = "0.1.0"

__all__ = [
    "denoise", "denoise_file", "add_noise", "evaluate", "estimate_sigma", "read_image", "write_image", "load_model", "save_model",
    "SelfdenoiseError", "InputError", "MissingDependencyError", "__version__",
]
