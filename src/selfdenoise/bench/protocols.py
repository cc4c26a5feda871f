"""The benchmark protocols of ``benchmarks.md`` as data: test sets, training sets, and how to read them."""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, replace
from fnmatch import fnmatch
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..api import add_noise
from ..core.errors import InputError
from ..core.io import read_image
from ..methods import registry
from ..methods.contract import DataNeeds
from ..training import from_arrays, from_volumes, neighbour_pairs

#: Classical baselines, run in every benchmark run unless disabled.
BASELINES = registry.CLASSICAL
#: Methods trained on a data set (not on the test image itself).
DATASET_METHODS = tuple(registry.names("dataset"))


@dataclass(frozen=True)
class TestSet:
    """The images of one split of a protocol: ``folder/pattern`` relative to the data root.

    ``noise`` is the synthetic noise spec (clean images, noise added per image) or None for real
    noisy/clean pairs; then ``pattern`` matches the noisy files and either ``pair`` = (noisy marker, clean
    marker) maps a noisy stem ending with the first to the clean file whose stem ends with the second
    (``x_real.JPG`` -> ``x_mean.JPG``, ``10/test.tif`` -> ``10/average.tif``), or ``pair_folders`` =
    (noisy folder, clean folder) maps ``noisy/NN.png`` to ``reference/NN.png``.
    ``select`` / ``drop``: shell patterns on the image name that keep / remove images (the splits of one
    folder). ``slices`` = (first, stop): the test images are these z-slices of each file (a volume whose
    noise is drawn once for the whole volume). ``metric``: how outputs are scored
    (``core.metrics.METRIC_KINDS``). ``sigma`` is the known noise level given to the classical baselines
    (0-255), None = estimated (for spatially correlated noise on pixel-shuffle sub-images, as the API does).
    ``group_by`` = "camera" adds a per-camera breakdown (camera = file name up to the first ``_``).
    """

    name: str
    folder: str
    pattern: str
    noise: str | None = None
    sigma: float | None = None
    pair: tuple[str, str] | None = None
    pair_folders: tuple[str, str] | None = None
    select: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    slices: tuple[int, int] | None = None
    metric: str = "photo"
    group_by: str | None = None
    #: accept the pattern's files case-insensitively for these suffixes (``.JPG`` vs ``.jpg``)
    aliases: tuple[str, ...] = ()

    def image_name(self, path: Path, z: int | None = None) -> str:
        if z is not None:
            return f"{path.stem}_z{z:03d}"
        stem = path.stem
        if self.pair and stem.endswith(self.pair[0]):
            stem = stem[: len(stem) - len(self.pair[0])].rstrip("_")
        return stem or path.parent.name

    def clean_path(self, noisy: Path) -> Path:
        if self.pair_folders:
            return noisy.parent.parent / self.pair_folders[1] / noisy.name
        old, new = self.pair  # type: ignore[misc]
        stem = noisy.stem
        if not stem.endswith(old):
            raise InputError(f"{noisy}: expected a name ending in '{old}{noisy.suffix}'")
        return noisy.with_name(stem[: len(stem) - len(old)] + new + noisy.suffix)

    def keeps(self, name: str) -> bool:
        return (not self.select or any(fnmatch(name, p) for p in self.select)) and \
            not any(fnmatch(name, p) for p in self.drop)

    def group(self, name: str) -> str | None:
        return name.split("_", 1)[0] if self.group_by == "camera" else None


@dataclass(frozen=True)
class TestImage:
    """One image of a split: its index in the whole folder (its noise seed offset), file and z-slice."""

    index: int
    path: Path
    name: str
    z: int | None = None


@dataclass(frozen=True)
class Protocol:
    """One row of the protocol table: its test sets (``test_sets[0]`` is the default ``dataset``), its
    validation sets (settings are selected there and nowhere else), and the training set of the methods
    trained on a data set. ``transductive``: those methods may train on the noisy test images themselves
    (the table says so)."""

    name: str
    description: str
    test_sets: tuple[TestSet, ...]
    validation: tuple[TestSet, ...] = ()
    train: str | None = None  # folder/glob of the noisy-only training set ({a,b} allowed); None: nothing
    train_noise: str | None = None  # synthetic noise added to ``train``; None: the files are real noisy images
    #: "folder": the training files of one folder are realisations of one scene (OCT repeated B-scans)
    train_group: str | None = None
    #: folder/glob of unpaired clean images of other scenes, for methods that learn from them (TCFL); the
    #: noisy domain of those methods leaves out the folders of the clean domain
    train_clean: str | None = None
    transductive: bool = False
    seed: int = 0  # seed base: image i gets noise seed ``seed + run seed + i``
    reference: str = ""
    runnable: bool = True

    def test_set(self, dataset: str | None, split: str = "test") -> TestSet:
        if split not in SPLITS:
            raise InputError(f"unknown split '{split}' (choose from: {', '.join(SPLITS)})")
        sets = self.test_sets if split == "test" else self.validation
        if not sets:
            raise InputError(f"protocol '{self.name}' has no {split} split"
                             + (" (it uses the settings selected on w2s-widefield)" if self.name == "fmd-confocal"
                                else ""))
        if dataset is None:
            return sets[0]
        for ts in sets:
            if dataset in (ts.name, ts.folder):
                return ts
        names = ", ".join(ts.name for ts in sets)
        raise InputError(f"protocol '{self.name}' has no {split} dataset '{dataset}' (choose from: {names})")


#: The splits of every protocol: settings are chosen on ``validation``, figures reported on ``test``.
SPLITS = ("test", "validation")
_MCMASTER = TestSet("mcmaster", "mcmaster", "*.tif", noise="gauss:25", sigma=25.0)
_KODAK = TestSet("kodak24", "kodak24", "*.png", noise="gauss:25", sigma=25.0)
_SET14 = TestSet("set14", "set14", "*.png", noise="gauss:25", sigma=25.0)
_POLYU_VALIDATION = ("Canon5D2_*_chair_*", "Canon600D_*_book_*", "Canon80D_*_ball_*", "NikonD800_*_flower_*",
                     "Sony_*_door_*")
_POLYU = dict(folder="polyu_real100", pattern="*_real.JPG", pair=("_real", "_mean"), group_by="camera",
              aliases=("*_real.jpg",))
_W2S = dict(folder="w2s_widefield", pattern="noisy/*.png", pair_folders=("noisy", "reference"),
            metric="scale-invariant")
_W2S_VALIDATION = ("00[1-9]_*", "010_*")  # fields of view 001-010
_NAM = dict(folder="nam_patches", pattern="noisy/*.png", pair_folders=("noisy", "reference"))
_NUCLEI = dict(folder="nuclei3d", pattern="nuclei.tif", noise="poisson:20+gauss:25.5", metric="float")

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("gauss25-color", "Gaussian sigma=25 on colour images", (_KODAK, _SET14), (_MCMASTER,),
             train="bsd300_test/*.png", train_noise="gauss:25",
             reference="Kodak: CBM3D 31.87, Neighbor2Neighbor 32.08, Noise2Noise 32.39, Self2Self 31.28"),
    Protocol("gauss5-50-color", "Gaussian sigma ~ U[5,50] training, sigma=25 and U[5,50] test (N2N convention)",
             (_KODAK, TestSet("kodak24-5-50", "kodak24", "*.png", noise="gauss:5-50"), _SET14), (_MCMASTER,),
             train="bsd300_test/*.png", train_noise="gauss:5-50",
             reference="Ne2Ne Kodak 32.10 (tested with sigma ~ U[5,50])"),
    Protocol("poisson30-color", "Poisson lambda=30 on colour images",
             (TestSet("kodak24", "kodak24", "*.png", noise="poisson:30"),
              TestSet("set14", "set14", "*.png", noise="poisson:30")),
             (TestSet("mcmaster", "mcmaster", "*.tif", noise="poisson:30"),),
             train="bsd300_test/*.png", train_noise="poisson:30",
             reference="Ne2Ne Kodak 31.44, N2N Kodak 31.66"),
    Protocol("gauss25-gray", "Gaussian sigma=25 on gray images",
             (TestSet("bsd68", "bsd68", "*.png", noise="gauss:25", sigma=25.0),),
             (TestSet("set12", "set12", "*.png", noise="gauss:25", sigma=25.0),),
             train="bsd400_train/*.png", train_noise="gauss:25",
             reference="BM3D BSD68 28.57, Set12 29.97"),
    Protocol("real-polyu", "real camera noise: *_real.JPG scored against *_mean.JPG",
             (TestSet("polyu", drop=_POLYU_VALIDATION, **_POLYU), TestSet("polyu-all100", **_POLYU)),
             (TestSet("polyu-validation", select=_POLYU_VALIDATION, **_POLYU),),
             train="polyu_real100/*_real.JPG", transductive=True,
             reference="CBM3D 36.98, Self2Self 37.52 (all 100); noisy 35.97 (all 100)"),
    Protocol("real-nam", "real camera noise (Nam et al.): noisy/NN.png scored against reference/NN.png",
             (TestSet("nam", drop=("0[1-5]",), **_NAM),), (TestSet("nam-validation", select=("0[1-5]",), **_NAM),),
             train="nam_patches/noisy/*.png", transductive=True, reference="NLM (stride-3 sigma) 38.7-39.9 on 4 patches"),
    Protocol("oct-duke", "real OCT speckle: test.tif scored against average.tif",
             (TestSet("duke", "oct_duke_fang2013", "1[0-8]/test.tif", pair=("test", "average")),),
             (TestSet("duke-validation", "oct_duke_fang2013", "0[8-9]/test.tif", pair=("test", "average")),),
             train="oct_duke_fang2013/0[1-7]/{test,1,2,3,4}.tif", train_group="folder",
             train_clean="oct_duke_fang2013/0[5-7]/average.tif",
             reference="noisy 17.75; BM3D 26.87, NLM 27.06 (estimated sigma); best published 28.25"),
    Protocol("w2s-widefield", "real widefield fluorescence: single frames scored against 400-frame averages "
             "(scale-invariant)", (TestSet("w2s", drop=_W2S_VALIDATION, **_W2S),),
             (TestSet("w2s-validation", select=_W2S_VALIDATION, **_W2S),),
             train="w2s_widefield/noisy/*.png", transductive=True,
             reference="CAREamics N2V2 on single frames: 25.8 (001_1), 32.4 (002_0)"),
    Protocol("fmd-confocal", "real confocal Poisson-Gaussian noise: raw frames scored against 50-frame "
             "averages (scale-invariant; settings from w2s-widefield validation)",
             (TestSet("fmd", "fmd_confocal", "noisy/*.tif", pair_folders=("noisy", "reference"),
                      metric="scale-invariant", aliases=("noisy/*.png",)),),
             train="fmd_confocal/noisy/*.*", transductive=True,
             reference="CAREamics N2V2 on single frames: 33.6-34.5 (mice), 30.4 (fish)"),
    Protocol("poisson-3d", "nuclei3d scaled to 20 photons at full scale, Poisson + Gaussian read noise of 2 photons "
             "(semi-synthetic; z-slices of one noisy volume)", (TestSet("nuclei-z30-59", slices=(30, 60), **_NUCLEI),),
             (TestSet("nuclei-z0-29", slices=(0, 30), **_NUCLEI),), train="nuclei3d/nuclei.tif",
             train_noise="poisson:20+gauss:25.5", transductive=True, reference="semi-synthetic; no published figure"),
    Protocol("single-image", "each test image alone (zero-shot and classical methods only)", (_KODAK,),
             (_MCMASTER,), train=None, reference="CBM3D; Self2Self Set9 31.74"),
    # Synthetic sequences, no data folder: run by ``bench.landmarks_synth.run_landmarks`` (``limit`` = tracks).
    Protocol("landmarks-synth", "synthetic face-landmark trajectories (1-D tracks)", (),
             reference="Savitzky-Golay, Gaussian smoothing, One Euro filter"),
)}


def result_dir(out_dir: str | os.PathLike, protocol: str, dataset: str | None = None, split: str = "test") -> Path:
    """``<out_dir>/<protocol>`` for the protocol's default test set, ``<out_dir>/<protocol>-<dataset>`` for
    another one, and ``-validation`` after either for the validation split (runs never overwrite each other)."""
    p = PROTOCOLS.get(protocol)
    sets = (p.test_sets if split == "test" else p.validation) if p else ()
    default = sets[0].name if sets else None
    name = protocol if dataset in (None, default) else f"{protocol}-{dataset}"
    return Path(out_dir) / (name if split == "test" else f"{name}-validation")


def find_test_images(data_dir: Path, ts: TestSet) -> list[TestImage]:
    """The images of a split, each with its index in the whole folder (so its noise seed does not depend
    on the split or subset taken) and, for volumes, its z-slice."""
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
    items = []
    for index, path in enumerate(sorted(files)):
        for z in range(*ts.slices) if ts.slices else [None]:
            items.append(TestImage(index, path, ts.image_name(path, z), z))
    kept = [item for item in items if ts.keeps(item.name)]
    if not kept:
        raise InputError(f"{folder}: no test images of '{ts.name}' among {len(items)} matching '{ts.pattern}'")
    return kept


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


#: the seed base of training realisations: no test image uses a seed from it on
TRAINING_NOISE_SEED = 1_000_000


def realisation_seed(seed: int, realisation: int, index: int) -> int:
    """The noise seed of noisy realisation ``realisation`` of training image ``index``."""
    return seed + realisation * 100_000 + index


def protocol_training_set(proto: Protocol, data_dir: Path, needs: DataNeeds, base_seed: int = 0,
                          seed: int = TRAINING_NOISE_SEED):
    """The protocol's noisy training images, for a method with these data ``needs``.

    Synthetic noise (``train_noise``) is drawn once per realisation (two for methods trained on pairs)
    with fixed seeds that no test image uses (``realisation_seed``); a transductive protocol instead
    trains on the noisy test volume itself, exactly as the tests see it (whole, for a method of volumes; its
    neighbouring planes as pairs, for a method trained on pairs). Real
    noisy files are used as they are, grouped by folder when ``train_group == "folder"`` (the frames of a folder
    are realisations of one scene). For methods that also learn from unpaired clean images the noisy domain
    leaves out the folders of the clean domain (TCFL on OCT: noisy eyes 01-04, clean averages of eyes 05-07).
    Only noisy images reach the method."""
    files = protocol_train_files(proto, data_dir)
    if needs.clean and proto.train_clean:
        clean_folders = {f.parent for f in protocol_files(data_dir, proto.train_clean, "clean training images")}
        files = [f for f in files if f.parent not in clean_folders]
        if not files:
            raise InputError(f"protocol '{proto.name}': no noisy training images outside the clean domain's folders")
    if proto.train_noise is None:
        by_key: dict[str, list] = {}
        for f in files:
            key = str(f.parent) if proto.train_group == "folder" else str(f)
            by_key.setdefault(key, []).append(read_image(f)[0])
        names = [Path(k).name for k in by_key]
        return replace(from_arrays(list(by_key.values()), names, layout=f"{proto.train} (real noise"
                                   f"{', frames of a folder = one scene' if proto.train_group else ''})"),
                       sources=[source_name(f) for f in files])
    if proto.transductive:
        volumes = [_noisy_volume(str(f), proto.train_noise, base_seed + i)[1] for i, f in enumerate(files)]
        if needs.ndim == 3:  # a method of volumes trains on the noisy volumes whole
            return from_volumes(volumes, [f.name for f in files], layout=f"{proto.train} + {proto.train_noise}: "
                                "the noisy test volume itself (transductive), whole")
        if needs.pairs:  # Noise2Noise on a volume: neighbouring planes as the pairs
            pairs = [p for v in volumes for p in neighbour_pairs(v)]
            return from_arrays(pairs, [f"z{z:03d}+{z + 1:03d}" for z in range(len(pairs))],
                               layout=f"{proto.train} + {proto.train_noise}: neighbouring planes of the noisy test "
                                      "volume itself (transductive)")
        slices = [s for v in volumes for s in v]
        return from_arrays(slices, [f"z{z:03d}" for z in range(len(slices))],
                           layout=f"{proto.train} + {proto.train_noise}: the noisy test volume itself (transductive)")
    realisations = 2 if needs.pairs else 1
    groups = []
    for i, f in enumerate(files):
        clean, _ = read_image(f)
        groups.append([add_noise(clean, proto.train_noise, seed=realisation_seed(seed, r, i))
                       for r in range(realisations)])
    return replace(from_arrays(groups, [f.name for f in files], layout=f"{proto.train} + {proto.train_noise}, "
                               f"{realisations} fixed noisy realisation(s) each"), sources=[source_name(f) for f in files])


def source_name(path: Path) -> str:
    """How a training or test file is named in model files: ``folder/name``."""
    return f"{path.parent.name}/{path.name}"


def check_disjoint(proto: Protocol, items: list[TestImage], sources: list[str] | None, what: str) -> None:
    """Refuse a model (``what``) that trained on any of these test images, unless the protocol is
    transductive (then the result says so)."""
    if not sources or proto.transductive:
        return
    seen = sorted({source_name(item.path) for item in items} & set(sources))
    if seen:
        raise InputError(f"{what} trained on {len(seen)} of the test images (e.g. {seen[0]}); protocol "
                         f"'{proto.name}' is not transductive: use a model trained on other images")


def protocol_clean_images(proto: Protocol, data_dir: Path, method: str) -> tuple[list[np.ndarray], list[str]]:
    """The protocol's unpaired clean domain (``train_clean``), for methods that learn from one."""
    if proto.train_clean is None:
        raise InputError(f"method '{method}' needs unpaired clean images; protocol '{proto.name}' has none")
    files = protocol_files(data_dir, proto.train_clean, "clean training images")
    return [read_image(f)[0] for f in files], [f"{f.parent.name}/{f.name}" for f in files]


def test_volume(ts: TestSet, item: TestImage, base_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) of the whole volume (Z, H, W, C) a slice test image belongs to, its noise as ``test_pair``
    draws it (``test_volume(...)[k][item.z]`` is ``test_pair(...)[k]``)."""
    if ts.slices is None:
        raise InputError(f"test set '{ts.name}' holds 2-D images, not slices of a volume")
    return _noisy_volume(str(item.path), ts.noise, base_seed + item.index)


def test_pair(ts: TestSet, item: TestImage, base_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) of one test image: a real pair, the clean image with its seeded noise, or a slice
    of a volume whose noise was drawn once for the whole volume."""
    if ts.slices is not None:
        clean, noisy = _noisy_volume(str(item.path), ts.noise, base_seed + item.index)
        return clean[item.z], noisy[item.z]
    if ts.noise is None:
        noisy, _ = read_image(item.path)
        clean, _ = read_image(ts.clean_path(item.path))
    else:
        clean, _ = read_image(item.path)
        noisy = add_noise(clean, ts.noise, seed=base_seed + item.index)
    if noisy.shape != clean.shape:
        raise InputError(f"{item.path}: noisy shape {noisy.shape} differs from clean {clean.shape}")
    return clean, noisy


@lru_cache(maxsize=1)
def _noisy_volume(path: str, noise: str | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A volume (Z, H, W, C) and its noisy version, the noise drawn once with ``seed``."""
    clean, _ = read_image(path)
    if clean.ndim != 4:
        raise InputError(f"{path}: expected a volume (a multi-page TIFF or 3-D array), got shape {clean.shape}")
    z, h, w, c = clean.shape
    flat = clean.transpose(1, 0, 2, 3).reshape(h, z * w, c)  # one image: the slices side by side
    noisy = add_noise(flat, noise, seed=seed) if noise else flat
    return clean, noisy.reshape(h, z, w, c).transpose(1, 0, 2, 3)
