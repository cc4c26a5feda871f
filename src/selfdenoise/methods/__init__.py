"""Methods: the contract (``contract``), one file per method, the shared dataset-method base, the
single-image fitting loop and the registry. The method modules are loaded on first use
(``lazy_loader.attach``), so listing them imports no torch."""
import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=[
    "asym_mask", "n2n", "n2v", "n2v2", "ne2ne", "ne2ne_3d", "self2self", "self2self_1d", "struct_n2v", "tcfl",
    "zero_shot"])
