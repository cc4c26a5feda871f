"""User-facing errors: each carries one line that names the input and what is wrong."""


class SelfdenoiseError(Exception):
    """Base class. The CLI prints ``str(error)`` on one line and exits with code 2."""


class InputError(SelfdenoiseError, ValueError):
    """Bad input data, file, spec or option."""


class MissingDependencyError(SelfdenoiseError, ImportError):
    """An optional extra (bm3d, onnx, ...) is needed but not installed."""


class TrainingDiverged(SelfdenoiseError, FloatingPointError):
    """A loss became NaN or infinite; the message names the step and the learning rate."""
