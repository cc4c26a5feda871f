"""Training on a data set: the generic loop, its configuration and schedules, checkpoints, multi-process
runs, the training log, and the training sets themselves."""
from .checkpoint import previous_checkpoint, read_checkpoint, save_checkpoint
from .config import TrainConfig, TrainResult
from .data import TrainingSet, from_arrays, from_volumes, load_clean_folder, load_folder, load_volumes, neighbour_pairs
from .loop import pick_device, train, validate
from .schedule import SCHEDULES, lr_factor

__all__ = ["train", "validate", "pick_device", "TrainConfig", "TrainResult", "read_checkpoint", "save_checkpoint",
           "previous_checkpoint",
           "lr_factor", "SCHEDULES", "TrainingSet", "from_arrays", "load_folder", "load_clean_folder",
           "from_volumes", "load_volumes", "neighbour_pairs"]
