"""The bottom layer: errors, image IO, noise models, metrics, pixel-shuffle, tiling, augmentation,
option parsing, checked safetensors files and before/after comparison pages. It imports nothing else
of the package."""
