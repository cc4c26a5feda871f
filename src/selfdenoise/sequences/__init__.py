"""Tracks (frames x points x coords, e.g. face landmarks): reading and checking them, gaps and outlier
frames, the classical smoothers and the seeded synthetic landmark generator (loaded on first use,
``lazy_loader.attach``)."""
import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=["landmarks", "smoothers", "tracks"])
