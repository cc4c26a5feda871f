"""Training data for the dataset methods (Noise2Noise, Neighbor2Neighbor, ...).

A training set is a list of *groups*: each group holds one or more noisy realisations of the same
scene, all the same shape (C, H, W). The layouts understood on disk:

- a folder of images: one realisation each (Neighbor2Neighbor; Noise2Noise with ``noise`` given);
- a folder with sub-folders ``a/`` and ``b/``: pairs matched by file name (Noise2Noise on real data);
- a folder of sub-folders: each sub-folder is a group of repeated frames (e.g. OCT B-scans);
- a multi-page TIFF / 3-D NPY (or a folder of them): its slices are a group of repeated frames; when its
  axes (``--axes`` or OME/ImageJ metadata) name T or Z, each frame instead forms a group with the next one
  along the innermost of them (``neighbour_groups``): the frames of a time-lapse or the planes of a volume
  hold different signal, so Noise2Noise pairs neighbours only, aligned first when the method registers.

Methods of volumes (``DataNeeds.ndim == 3``) train on ZYX volumes instead (``load_volumes``, ``from_volumes``):
each group holds one volume (C, D, H, W), and a sample is a crop of ``needs.depth`` planes (at most the
shallowest volume's) x ``crop`` x ``crop``, the same in-plane flip/rotation applied to all its planes.

With a synthetic ``noise`` spec the images are the *signal* and every draw gets fresh noise on the
fly (the papers' synthetic protocol): two independent draws per sample for Noise2Noise, one for the
single-image losses.

Methods that also learn from *unpaired* clean images (TCFL) get a second domain: ``clean``, a list
of clean images of other scenes (any sizes, same channels), loaded with ``load_clean_folder``. Each
sample then also carries a random clean crop in ``batch.extra["clean"]``.

Every file is read and checked before training starts (unreadable or corrupt files, mixed channel
counts, images smaller than the crop), so a bad file never stops a run at step 5,000.

Batches are reproducible from ``(seed, step)`` alone: sample ``k`` of step ``s`` uses its own generator
seeded from ``(seed, s, k)`` (its clean crop too, drawn after the noisy one). That makes ``--resume``
exact and lets ``torchrun`` workers take disjoint slices of the same global batch, so N processes see
exactly what one process sees with N times the batch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..core.augment import augment_modes, flip_rotate
from ..core.errors import InputError
from ..core.io import IMAGE_SUFFIXES, ImageInfo, as_volumes, frame_runs, list_images, read_image
from ..core.noise import NoiseModel, parse_noise
from ..core.tiling import channels_last
from ..methods.contract import Batch, DataNeeds
from .registration import register_group


def sample_seed(seed: int, step: int, index: int) -> int:
    """Seed of sample ``index`` of step ``step`` (a fixed mix; independent of batch layout)."""
    return (int(seed) * 1_000_003 + int(step) * 10_007 + int(index) * 7_919 + 12_345) % (2**63 - 1)


@dataclass
class TrainingSet:
    """Groups of noisy realisations (each a list of float32 (C, H, W) tensors) plus an optional
    synthetic noise model applied on the fly."""

    groups: list[list[Tensor]]
    names: list[str]
    noise: NoiseModel | None = None
    layout: str = "images"
    clean: list[Tensor] | None = None  # unpaired clean images (C, H, W) of other scenes, or None
    registration: dict | None = None  # set by ``registered``
    #: the files the images came from ("folder/name"), recorded in model files so that a benchmark can
    #: refuse a model on test images it trained on
    sources: list[str] | None = None

    @property
    def channels(self) -> int:
        return int(self.groups[0][0].shape[0])

    @property
    def min_side(self) -> int:
        return min(min(g[0].shape[-2:]) for g in self.groups)

    @property
    def ndim(self) -> int:
        """2 for images (C, H, W), 3 for volumes (C, D, H, W)."""
        return int(self.groups[0][0].ndim) - 1

    @property
    def min_depth(self) -> int:
        """Planes of the shallowest volume (1 for images)."""
        return min(int(g[0].shape[1]) for g in self.groups) if self.ndim == 3 else 1

    def max_realisations(self) -> int:
        return max(len(g) for g in self.groups)

    def summary(self) -> dict:
        pixels = sum(int(g[0][0].numel()) for g in self.groups)  # voxels for volumes
        return {"layout": self.layout, "groups": len(self.groups),
                "images": sum(len(g) for g in self.groups), "channels": self.channels,
                "megapixels": round(pixels / 1e6, 3), "noise": self.noise.spec if self.noise else "in the data",
                **({"clean_images": len(self.clean)} if self.clean else {}),
                **({"registration": self.registration} if self.registration else {}),
                **({"sources": self.sources} if self.sources else {})}

    def with_clean(self, clean: list[np.ndarray] | list[Tensor], names: list[str] | None = None) -> "TrainingSet":
        """This set plus an unpaired clean domain: (H, W[, C]) float arrays in [0, 1] or (C, H, W) tensors."""
        if len(clean) == 0:
            raise InputError("the clean domain holds no images")
        names = list(names) if names is not None else [f"clean{i}" for i in range(len(clean))]
        tensors = []
        for a, n in zip(clean, names):
            if isinstance(a, Tensor):
                t = a.float()
            else:
                a = np.asarray(a, np.float32)
                t = _to_chw(a[..., None] if a.ndim == 2 else a)
            if t.ndim != 3:
                raise InputError(f"{n}: a clean image must be one 2-D image, got shape {tuple(t.shape)}")
            if t.shape[0] != self.channels:
                raise InputError(f"{n}: clean image has {t.shape[0]} channel(s), the noisy images {self.channels}")
            tensors.append(t.contiguous())
        return replace(self, clean=tensors)

    def registered(self) -> "TrainingSet":
        """This set with the frames of each group aligned (``register_group``); the summary gains
        ``registration``: how many frames moved and the largest shift. Synthetic noise and single
        images are left as they are."""
        if self.noise is not None or self.max_realisations() < 2:
            return self
        groups, moved, largest = [], 0, (0, 0)
        for g in self.groups:
            frames, shifts = register_group(g)  # a single frame comes back as it is, shift (0, 0)
            groups.append(frames)
            moved += sum(1 for s in shifts if s != (0, 0))
            largest = max([largest, *shifts], key=lambda s: abs(s[0]) + abs(s[1]))
        return replace(self, groups=groups, registration={"frames_moved": moved, "largest_shift": list(largest)})

    def check(self, crop: int, needs: DataNeeds, method: str = "this method") -> None:
        """Fail early with one line: crop larger than an image, no pairs for Noise2Noise (or a group
        with one frame), averaged targets of masked noise, no clean domain for a method that needs one, images for
        a method of volumes or volumes for a method of images."""
        pairs, targets = needs.pairs, needs.target_frames
        if needs.ndim != self.ndim:
            raise InputError(f"method '{method}' trains on volumes (Z, Y, X): give TIFF/NPY stacks with a Z axis "
                             "(--axes ZYX), not 2-D images" if needs.ndim == 3 else
                             f"method '{method}' trains on 2-D images, not volumes")
        if needs.clean and self.clean is None:
            raise InputError(f"method '{method}' learns from unpaired clean images too: give a folder of clean "
                             "images of other scenes (--clean DIR, or clean=... in the API)")
        small = [(n, tuple(g[0].shape[-2:])) for n, g in zip(self.names, self.groups) if min(g[0].shape[-2:]) < crop]
        if small:
            listed = ", ".join(f"{n} ({h}x{w})" for n, (h, w) in small[:3]) + (" ..." if len(small) > 3 else "")
            raise InputError(f"{len(small)} training image(s) smaller than the {crop}x{crop} crop: {listed}; "
                             f"use a smaller crop (--crop {max(8, (self.min_side // 8) * 8)})")
        if pairs and self.noise is None and self.max_realisations() < 2:
            raise InputError("Noise2Noise needs two noisy realisations of each scene: give a folder with a/ and b/ "
                             "sub-folders (matched by name), groups of repeated frames, or a synthetic --noise spec")
        if pairs and self.noise is None:
            single = [n for n, g in zip(self.names, self.groups) if len(g) < 2]
            if single:
                raise InputError(f"{len(single)} group(s) with a single frame, e.g. {single[0]}: Noise2Noise pairs "
                                 "frames of one scene; remove them or add frames")
        if pairs and targets != 1 and self.noise is not None:
            _, mask = self.noise.sample(torch.zeros(self.channels, 4, 4), torch.Generator().manual_seed(0))
            if mask is not None:
                raise InputError(f"noise '{self.noise.spec}' hides pixels: its targets cannot be averaged "
                                 "(use target_frames=1)")
            if targets == 0:
                raise InputError("target_frames=0 (all other frames) needs real repeated frames; with synthetic "
                                 "noise give a number of draws")
        small = [tuple(c.shape[-2:]) for c in self.clean or [] if min(c.shape[-2:]) < crop]
        if small:
            raise InputError(f"{len(small)} clean image(s) smaller than the {crop}x{crop} crop (e.g. "
                             f"{small[0][0]}x{small[0][1]}); use a smaller crop")

    def noised(self, signal: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """``(noisy, mask)``: one draw of the synthetic noise on a crop; a volume's planes are stacked as one tall
        image, so that one draw (one level, for a range of levels) covers the whole crop."""
        if signal.ndim == 3:
            return self.noise.sample(signal, generator)
        c, d, h, w = signal.shape
        x, m = self.noise.sample(signal.reshape(c, d * h, w), generator)
        return x.view(c, d, h, w), None if m is None else m.view(c, d, h, w)

    def sample(self, step: int, batch: int, crop: int, needs: DataNeeds = DataNeeds(), *, seed: int = 0,
               rank: int = 0) -> Batch:
        """Process ``rank``'s share of global batch ``step``: ``batch`` crops, each ``crop`` square and
        flipped/rotated by one of the modes of ``needs.augment`` (``core.augment.AUGMENT_MODES``).
        ``needs.pairs``: also a second, independent realisation as target; ``needs.target_frames`` > 1:
        the mean of that many other realisations (0: all the other frames of the group), a target with
        the same expectation and less noise. ``needs.clean``: also a crop of a random unpaired clean
        image per sample, in ``extra["clean"]``. Volumes (``needs.ndim`` 3): crops of ``needs.depth`` planes (at most
        the shallowest volume's)."""
        pairs, targets, clean = needs.pairs, needs.target_frames, needs.clean
        if clean and self.clean is None:
            raise InputError("this training set has no clean domain (give a folder of clean images)")
        modes = augment_modes(needs.augment)
        inputs, target_crops, masks, seeds, cleans = [], [], [], [], []
        for k in range(rank * batch, (rank + 1) * batch):
            s = sample_seed(seed, step, k)
            g = torch.Generator().manual_seed(s)
            group = self.groups[int(torch.randint(len(self.groups), (1,), generator=g))]
            window = crop_window(group[0].shape, crop, min(needs.depth, self.min_depth), g)
            aug = modes[int(torch.randint(len(modes), (1,), generator=g))]
            if self.noise is not None:
                signal = flip_rotate(group[int(torch.randint(len(group), (1,), generator=g))][window], aug)
                x, _ = self.noised(signal, g)
                if pairs:
                    t, m = self.noised(signal, g)
                    if targets > 1:  # masked noise is refused by ``check``
                        t = torch.stack([t] + [self.noised(signal, g)[0] for _ in range(targets - 1)]).mean(0)
            else:
                order = torch.randperm(len(group), generator=g)
                x = flip_rotate(group[int(order[0])][window], aug)
                if pairs:
                    others = order[1:] if targets == 0 else order[1:1 + max(1, targets)]
                    t = torch.stack([group[int(o)][window] for o in others]).mean(0)
                    t, m = flip_rotate(t, aug), None
            if clean:  # drawn after the noisy crop, so the noisy draws do not depend on it
                image = self.clean[int(torch.randint(len(self.clean), (1,), generator=g))]
                ci = int(torch.randint(image.shape[-2] - crop + 1, (1,), generator=g))
                cj = int(torch.randint(image.shape[-1] - crop + 1, (1,), generator=g))
                mode = modes[int(torch.randint(len(modes), (1,), generator=g))]
                cleans.append(flip_rotate(image[:, ci:ci + crop, cj:cj + crop], mode))
            inputs.append(x)
            seeds.append(s)
            if pairs:
                target_crops.append(t)
                masks.append(m)
        noisy = channels_last(torch.stack(inputs))
        target = channels_last(torch.stack(target_crops)) if pairs else None
        mask = torch.stack(masks) if pairs and masks[0] is not None else None
        extra = {"seeds": seeds}
        if clean:
            extra["clean"] = channels_last(torch.stack(cleans))
        return Batch(noisy=noisy, target=target, mask=mask, extra=extra)


def crop_window(shape: tuple, crop: int, depth: int, generator: torch.Generator) -> tuple[slice, ...]:
    """A random ``crop`` x ``crop`` window of an image (C, H, W), or of ``depth`` planes and ``crop`` x ``crop``
    pixels of a volume (C, D, H, W), as slices; drawn in the order row, column (, first plane)."""
    h, w = shape[-2:]
    i = int(torch.randint(h - crop + 1, (1,), generator=generator))
    j = int(torch.randint(w - crop + 1, (1,), generator=generator))
    rows, columns = slice(i, i + crop), slice(j, j + crop)
    if len(shape) == 3:
        return slice(None), rows, columns
    z = int(torch.randint(shape[1] - depth + 1, (1,), generator=generator))
    return slice(None), slice(z, z + depth), rows, columns


# ------------------------------------------------------------------------------------------ loading
def _to_chw(arr: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def _read_all(files: list[Path], axes: str | None = None, read=None) -> tuple[list, list[str]]:
    """Read every file (with ``axes``, see ``core.io.read_image``; or with ``read(file)``); collect all failures
    and report them together before training starts."""
    arrays, bad = [], []
    for f in files:
        try:
            arrays.append(read(f) if read else read_image(f, axes=axes)[0])
        except InputError as e:
            bad.append(str(e))
    if bad:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise InputError(f"{len(bad)} of {len(files)} training file(s) cannot be read: {'; '.join(bad[:3])}{more}")
    return arrays, [f.name for f in files]


def _check_channels(arrays: list[np.ndarray], names: list[str]) -> None:
    counts: dict[int, list[str]] = {}
    for a, n in zip(arrays, names):
        counts.setdefault(int(a.shape[-1]), []).append(n)
    if len(counts) > 1:
        parts = ", ".join(f"{len(v)} with {c} channel(s) (e.g. {v[0]})" for c, v in sorted(counts.items()))
        raise InputError(f"training images mix channel counts: {parts}; convert them to one kind first")


def from_arrays(groups: list[list[np.ndarray]] | list[np.ndarray], names: list[str] | None = None,
                noise: str | NoiseModel | None = None, layout: str = "arrays") -> TrainingSet:
    """A training set from in-memory float images (H, W, C) in [0, 1]: a list of images (one
    realisation each) or a list of groups (lists of realisations of one scene)."""
    if len(groups) == 0:
        raise InputError("the training set holds no images")
    norm = [[np.asarray(a, np.float32)] if isinstance(a, np.ndarray) else [np.asarray(b, np.float32) for b in a]
            for a in groups]
    norm = [[a[..., None] if a.ndim == 2 else a for a in g] for g in norm]
    names = list(names) if names is not None else [f"image{i}" for i in range(len(norm))]
    _check_channels([g[0] for g in norm], names)
    for g, n in zip(norm, names):
        if any(a.shape != g[0].shape for a in g):
            raise InputError(f"{n}: realisations of one scene differ in shape ({', '.join(str(a.shape) for a in g)})")
    model = parse_noise(noise) if noise is not None else None
    return TrainingSet([[_to_chw(a) for a in g] for g in norm], names, model, layout)


def from_volumes(volumes: list[np.ndarray], names: list[str] | None = None, noise: str | NoiseModel | None = None,
                 layout: str = "volumes") -> TrainingSet:
    """A training set of in-memory float volumes (Z, H, W) or (Z, H, W, C) in [0, 1], one realisation each,
    for methods of volumes (``DataNeeds.ndim == 3``)."""
    if len(volumes) == 0:
        raise InputError("the training set holds no volumes")
    names = list(names) if names is not None else [f"volume{i}" for i in range(len(volumes))]
    norm = [np.asarray(v, np.float32) for v in volumes]
    norm = [v[..., None] if v.ndim == 3 else v for v in norm]
    bad = [(n, v.shape) for n, v in zip(names, norm) if v.ndim != 4]
    if bad:
        raise InputError(f"{bad[0][0]}: a volume is (Z, Y, X) or (Z, Y, X, C), got shape {bad[0][1]}")
    _check_channels(norm, names)
    tensors = [torch.from_numpy(np.ascontiguousarray(v.transpose(3, 0, 1, 2))) for v in norm]
    return TrainingSet([[t] for t in tensors], names, parse_noise(noise) if noise is not None else None, layout)


def load_volumes(path: str | os.PathLike, noise: str | NoiseModel | None = None,
                 axes: str | None = None) -> TrainingSet:
    """The ZYX volumes of a TIFF/NPY file or of a folder of them (``core.io.as_volumes``: a file with S, T or
    several channels holds several); a one-line error for a 2-D image or axes without Z."""
    files = list_images(path)
    stacks, _ = _read_all(files, read=lambda f: as_volumes(*read_image(f, axes=axes), f))
    volumes, names = [], []
    for f, stack in zip(files, stacks):
        volumes.extend(stack)
        names.extend([f.name] if len(stack) == 1 else [f"{f.name}[{k}]" for k in range(len(stack))])
    layout = f"volumes ({sum(v.shape[0] for v in volumes)} planes in all)"
    return replace(from_volumes(volumes, names, noise, layout), sources=[f"{f.parent.name}/{f.name}" for f in files])


def load_folder(path: str | os.PathLike, noise: str | NoiseModel | None = None,
                axes: str | None = None) -> TrainingSet:
    """Scan ``path`` (see the module docstring for the layouts), read and check every file (``axes``: what the
    dimensions of its TIFF/NPY files are, as ``core.io.read_image`` takes them)."""
    root = Path(path)
    if not root.exists():
        raise InputError(f"{root}: no such training folder")
    if root.is_file():
        return _load_stacks([root], noise, axes)
    a_dir, b_dir = root / "a", root / "b"
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = sorted(f for f in root.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if a_dir.is_dir() and b_dir.is_dir():
        fa, fb = list_images(a_dir), list_images(b_dir)
        names_b = {f.name: f for f in fb}
        missing = [f.name for f in fa if f.name not in names_b]
        if missing:
            raise InputError(f"{b_dir}: no partner for {len(missing)} file(s) of a/ (e.g. {missing[0]}); "
                             "pairs are matched by file name")
        arr_a, names = _read_all(fa, axes)
        arr_b, _ = _read_all([names_b[n] for n in names], axes)
        groups = [[x, y] for x, y in zip(arr_a, arr_b)]
        layout, read = "pairs a/ b/", fa + fb
    elif subdirs and not files:
        groups, names, read = [], [], []
        for d in subdirs:
            arrs, _ = _read_all(list_images(d), axes)
            groups.append([s for a in arrs for s in (a if a.ndim == 4 else [a])])
            names.append(d.name)
            read += list_images(d)
        layout = "groups (one per sub-folder)"
    else:
        return _load_stacks(list_images(root), noise, axes)
    return replace(from_arrays(groups, names, noise, layout), sources=[f"{f.parent.name}/{f.name}" for f in read])


def _load_stacks(files: list[Path], noise, axes: str | None) -> TrainingSet:
    """Images and stacks, one file each: an image is a group of one, a stack a group of repeated frames or
    its neighbouring frames (``neighbour_groups``)."""
    per_file, _ = _read_all(files, read=lambda f: neighbour_groups(*read_image(f, axes=axes)))
    groups = [g for gs in per_file for g in gs]
    names = [f.name if len(gs) == 1 else f"{f.name}[{k}]" for f, gs in zip(files, per_file) for k in range(len(gs))]
    neighbours = any(len(gs) > 1 for gs in per_file)
    layout = ("neighbouring frames (T or Z)" if neighbours else "stacks (groups of frames)"
              if any(len(gs[0]) > 1 for gs in per_file) else "images")
    return replace(from_arrays(groups, names, noise, layout), sources=[f"{f.parent.name}/{f.name}" for f in files])


def neighbour_groups(arr: np.ndarray, info: ImageInfo) -> list[list[np.ndarray]]:
    """``read_image``'s array as training groups: an image alone; a stack whose axes name T or Z as groups
    ``[frame k, frame k+1]`` along the innermost of them (never across the outer axes); any other stack as
    one group of repeated frames of one scene."""
    if arr.ndim == 3:
        return [[arr]]
    if not ({"T", "Z"} & set(info.axes)):
        return [list(arr)]
    runs = frame_runs(arr, info)
    if runs.shape[1] < 2:
        return [[frame] for run in runs for frame in run]
    return [pair for run in runs for pair in neighbour_pairs(run)]


def neighbour_pairs(frames) -> list[list]:
    """``[frame k, frame k + 1]`` for every k of a run of frames (a time-lapse, or the planes of a volume)."""
    return [[frames[k], frames[k + 1]] for k in range(len(frames) - 1)]


def load_clean_folder(path: str | os.PathLike) -> tuple[list[np.ndarray], list[str]]:
    """Every image under ``path`` (a folder, searched recursively, or one file; stacks give their
    slices) as float (H, W, C) arrays in [0, 1] (8- and 16-bit scaled by their range), with names."""
    root = Path(path)
    if not root.exists():
        raise InputError(f"{root}: no such clean-image folder")
    files = [root] if root.is_file() else sorted(
        f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in f.relative_to(root).parts))
    if not files:
        raise InputError(f"{root}: no clean images found")
    arrays, _ = _read_all(files)
    images, names = [], []
    for a, f in zip(arrays, files):
        slices = list(a) if a.ndim == 4 else [a]
        images.extend(slices)
        names.extend([str(f.relative_to(root)) if root.is_dir() else f.name] * len(slices))
    _check_channels(images, names)
    return images, names
