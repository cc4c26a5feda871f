"""The benchmark protocols of ``benchmarks.md`` as data: test sets, training sets, and how to read them."""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..api import add_noise
from ..core.errors import InputError
from ..core.io import read_image
from ..methods import registry
from ..training import from_arrays

#: Classical baselines, run in every benchmark run unless disabled.
BASELINES = registry.CLASSICAL
#: Methods trained on a data set (not on the test image itself).
DATASET_METHODS = tuple(registry.names("dataset"))


@dataclass(frozen=True)
class TestSet:
    """Test images of one protocol: ``folder/pattern`` relative to the data root.

    ``noise`` is the synthetic noise spec (clean images, noise added per image) or None for real
    noisy/clean pairs; then ``pattern`` matches the noisy files and ``pair`` = (noisy marker, clean
    marker) maps a noisy stem ending with the first to the clean file whose stem ends with the second
    (``x_real.JPG`` -> ``x_mean.JPG``, ``10/test.tif`` -> ``10/average.tif``).
    ``sigma`` is the known noise level given to the classical baselines (0-255), None = estimated.
    ``sigma_stride`` > 1: the baselines' estimated sigma is taken on pixel-shuffle sub-images (see
    ``classical.noise_level.estimate_sigma``), for spatially correlated real noise.
    ``group_by`` = "camera" adds a per-camera breakdown (camera = file name up to the first ``_``).
    """

    name: str
    folder: str
    pattern: str
    noise: str | None = None
    sigma: float | None = None
    sigma_stride: int = 1
    pair: tuple[str, str] | None = None
    group_by: str | None = None
    #: accept the pattern's files case-insensitively for these suffixes (``.JPG`` vs ``.jpg``)
    aliases: tuple[str, ...] = ()

    def image_name(self, path: Path) -> str:
        stem = path.stem
        if self.pair and stem.endswith(self.pair[0]):
            stem = stem[: len(stem) - len(self.pair[0])].rstrip("_")
        return stem or path.parent.name

    def clean_path(self, noisy: Path) -> Path:
        old, new = self.pair  # type: ignore[misc]
        stem = noisy.stem
        if not stem.endswith(old):
            raise InputError(f"{noisy}: expected a name ending in '{old}{noisy.suffix}'")
        return noisy.with_name(stem[: len(stem) - len(old)] + new + noisy.suffix)

    def group(self, name: str) -> str | None:
        return name.split("_", 1)[0] if self.group_by == "camera" else None


@dataclass(frozen=True)
class Protocol:
    """One row of the protocol table: where to test, with what noise, and what training set the
    learned (non-zero-shot) methods use. ``test_sets[0]`` is the default ``dataset``."""

    name: str
    description: str
    test_sets: tuple[TestSet, ...]
    train: str | None = None  # folder/glob of the noisy-only training set ({a,b} allowed); None: nothing
    train_noise: str | None = None  # synthetic noise added to ``train``; None: the files are real noisy images
    #: "folder": the training files of one folder are realisations of one scene (OCT repeated B-scans)
    train_group: str | None = None
    #: folder/glob of unpaired clean images of other scenes, for methods that learn from them (TCFL)
    train_clean: str | None = None
    seed: int = 0  # seed base: image i gets noise seed ``seed + run seed + i``
    reference: str = ""
    runnable: bool = True

    def test_set(self, dataset: str | None) -> TestSet:
        if not self.test_sets:
            raise InputError(f"protocol '{self.name}' has no image test set; it is not runnable yet")
        if dataset is None:
            return self.test_sets[0]
        for ts in self.test_sets:
            if dataset in (ts.name, ts.folder):
                return ts
        names = ", ".join(ts.name for ts in self.test_sets)
        raise InputError(f"protocol '{self.name}' has no dataset '{dataset}' (choose from: {names})")


_KODAK = TestSet("kodak24", "kodak24", "*.png", noise="gauss:25", sigma=25.0)
_SET14 = TestSet("set14", "set14", "*.png", noise="gauss:25", sigma=25.0)
_POLYU = TestSet("polyu", "polyu_real100", "*_real.JPG", pair=("_real", "_mean"), group_by="camera",
                 sigma_stride=3,
                 aliases=("*_real.jpg",))

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("gauss25-color", "Gaussian sigma=25 on colour images", (_KODAK, _SET14),
             train="bsd300_test/*.png", train_noise="gauss:25",
             reference="Kodak: CBM3D 31.87, Neighbor2Neighbor 32.08, Noise2Noise 32.39, Self2Self 31.28"),
    Protocol("gauss5-50-color", "Gaussian sigma ~ U[5,50] training, sigma=25 test (N2N convention)",
             (_KODAK, _SET14), train="bsd300_test/*.png", train_noise="gauss:5-50",
             reference="Ne2Ne Kodak 32.10 (tested with sigma ~ U[5,50])"),
    Protocol("poisson30-color", "Poisson lambda=30 on colour images",
             (TestSet("kodak24", "kodak24", "*.png", noise="poisson:30"),
              TestSet("set14", "set14", "*.png", noise="poisson:30")),
             train="bsd300_test/*.png", train_noise="poisson:30",
             reference="Ne2Ne Kodak 31.44, N2N Kodak 31.66"),
    Protocol("gauss25-gray", "Gaussian sigma=25 on gray images",
             (TestSet("bsd68", "bsd68", "*.png", noise="gauss:25", sigma=25.0),
              TestSet("set12", "set12", "*.png", noise="gauss:25", sigma=25.0)),
             train="bsd400_train/*.png", train_noise="gauss:25",
             reference="BM3D BSD68 28.57, Set12 29.97"),
    Protocol("real-polyu", "real camera noise: *_real.JPG scored against *_mean.JPG", (_POLYU,),
             train="polyu_real100/*_real.JPG", reference="CBM3D 36.98, Self2Self 37.52; noisy 35.97"),
    Protocol("oct-duke", "real OCT speckle: test.tif of subjects 10-18 scored against average.tif",
             (TestSet("duke", "oct_duke_fang2013", "1[0-8]/test.tif", pair=("test", "average")),),
             train="oct_duke_fang2013/0[1-9]/{test,1,2,3,4}.tif", train_group="folder",
             train_clean="oct_duke_fang2013/0[1-9]/average.tif",
             reference="noisy 17.75; BM3D 26.87, NLM 27.06 (estimated sigma); best published 28.25"),
    Protocol("single-image", "each test image alone (zero-shot and classical methods only)",
             (_KODAK, _POLYU), train=None, reference="CBM3D; Self2Self Set9 31.74"),
    # Synthetic sequences, no data folder: run by ``bench.landmarks.run_landmarks`` (``limit`` = tracks).
    Protocol("landmarks-synth", "synthetic face-landmark trajectories (1-D tracks)", (),
             reference="Savitzky-Golay, Gaussian smoothing, One Euro filter"),
)}


def result_dir(out_dir: str | os.PathLike, protocol: str, dataset: str | None = None) -> Path:
    """``<out_dir>/<protocol>`` for the protocol's default test set, ``<out_dir>/<protocol>-<dataset>``
    for another one (so runs on different test sets never overwrite each other)."""
    p = PROTOCOLS.get(protocol)
    default = p.test_sets[0].name if p and p.test_sets else None
    name = protocol if dataset in (None, default) else f"{protocol}-{dataset}"
    return Path(out_dir) / name


def find_test_images(data_dir: Path, ts: TestSet) -> list[Path]:
    folder = data_dir / ts.folder
    if not folder.is_dir():
        if data_dir.name == ts.folder or any(data_dir.glob(ts.pattern)):
            folder = data_dir  # the test set's own folder was given
        else:
            raise InputError(f"{data_dir}: no '{ts.folder}/' folder inside (pass the folder that holds "
                             f"{ts.folder}/, e.g. the shared data folder)")
    files = set()
    for pattern in (ts.pattern, *ts.aliases):
        files.update(p for p in folder.glob(pattern) if p.is_file())
    if not files:
        raise InputError(f"{folder}: no test images matching '{ts.pattern}'")
    return sorted(files)


def expand_braces(pattern: str) -> list[str]:
    """``a/{x,y}.tif`` -> [``a/x.tif``, ``a/y.tif``] (glob has no braces); nested braces are not needed."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    return [q for alt in m.group(1).split(",") for q in expand_braces(pattern[: m.start()] + alt + pattern[m.end():])]


def protocol_files(data_dir: Path, pattern: str, what: str = "training images") -> list[Path]:
    """The files matching ``pattern`` (a glob with ``{a,b}`` braces) under ``data_dir``; one-line error if none."""
    files = sorted({Path(f) for pat in expand_braces(str(data_dir / pattern)) for f in glob.glob(pat)})
    if not files:
        raise InputError(f"{data_dir / pattern}: no {what}")
    return files


def protocol_train_files(proto: Protocol, data_dir: Path) -> list[Path]:
    return protocol_files(data_dir, proto.train)


def protocol_training_set(proto: Protocol, data_dir: Path, realisations: int, seed: int = 1_000_000):
    """The protocol's noisy training images. Synthetic noise (``train_noise``) is drawn once per
    realisation with fixed seeds that no test image uses (``seed + r * 100_000 + i``); real noisy
    files are used as they are, grouped by folder when ``train_group == "folder"`` (the frames of a
    folder are realisations of one scene). Only these noisy images reach the method."""
    files = protocol_train_files(proto, data_dir)
    if proto.train_noise is None:
        by_key: dict[str, list] = {}
        for f in files:
            key = str(f.parent) if proto.train_group == "folder" else str(f)
            by_key.setdefault(key, []).append(read_image(f)[0])
        names = [Path(k).name for k in by_key]
        return from_arrays(list(by_key.values()), names, layout=f"{proto.train} (real noise"
                                   f"{', frames of a folder = one scene' if proto.train_group else ''})")
    groups = []
    for i, f in enumerate(files):
        clean, _ = read_image(f)
        groups.append([add_noise(clean, proto.train_noise, seed=seed + r * 100_000 + i) for r in range(realisations)])
    return from_arrays(groups, [f.name for f in files], layout=f"{proto.train} + {proto.train_noise}, "
                               f"{realisations} fixed noisy realisation(s) each")


def protocol_clean_images(proto: Protocol, data_dir: Path, method: str) -> tuple[list[np.ndarray], list[str]]:
    """The protocol's unpaired clean domain (``train_clean``), for methods that learn from one."""
    if proto.train_clean is None:
        raise InputError(f"method '{method}' needs unpaired clean images; protocol '{proto.name}' has none")
    files = protocol_files(data_dir, proto.train_clean, "clean training images")
    return [read_image(f)[0] for f in files], [f"{f.parent.name}/{f.name}" for f in files]


def test_pair(ts: TestSet, path: Path, index: int, base_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) of one test image: a real pair, or the clean image with its seeded noise."""
    if ts.noise is None:
        noisy, _ = read_image(path)
        clean, _ = read_image(ts.clean_path(path))
    else:
        clean, _ = read_image(path)
        noisy = add_noise(clean, ts.noise, seed=base_seed + index)
    if noisy.shape != clean.shape:
        raise InputError(f"{path}: noisy shape {noisy.shape} differs from clean {clean.shape}")
    return clean, noisy
