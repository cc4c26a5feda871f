"""The bottom layer: errors, image IO, noise models, metrics, pixel-shuffle, tiling, augmentation,
option parsing and checked safetensors files. It imports nothing else of the package."""
