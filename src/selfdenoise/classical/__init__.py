"""Classical methods: NLM and BM3D baselines, noise-level estimation, collaborative Wiener filtering
(loaded on first use, ``lazy_loader.attach``)."""
import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=["baselines", "noise_level", "vst", "wiener"])
