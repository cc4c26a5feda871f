"""selfdenoise: learn to denoise from noisy data alone.

>>> import selfdenoise
>>> clean = selfdenoise.denoise(noisy)                 # zero-shot: this image alone
>>> clean = selfdenoise.denoise(noisy, method="bm3d", sigma=25)
>>> selfdenoise.train("photos/", method="ne2ne", output="ne2ne.sdm", minutes=30)
>>> clean = selfdenoise.load_model("ne2ne.sdm").denoise(noisy)

The submodules and names below are loaded on first use (``lazy_loader.attach``, SPEC 1), so
``import selfdenoise`` and the CLI's ``--help`` do not import torch.
"""
import lazy_loader as lazy

from .core.version import __version__

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=["api", "bench", "export", "modelfile", "zoo"], submod_attrs={
    "api": ["TrainedModel", "add_noise", "denoise", "denoise_file", "denoise_files", "denoise_report",
            "denoise_sequence", "denoise_sequence_file", "denoise_zarr", "estimate_sigma", "evaluate", "load_model",
            "train"],
    "core.compare_page": ["ComparePage", "write_compare_page"],
    "core.errors": ["InputError", "MissingDependencyError", "SelfdenoiseError"],
    "core.io": ["read_image", "write_image"],
    "modelfile": ["save_model"],
})
__all__ += ["__version__"]
