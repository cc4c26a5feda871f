"""Sequences of points over time (face-landmark tracks): validation, NaN gaps, and file IO.

A sequence is a float array shaped (frames, points, coords), e.g. MediaPipe's 478 face landmarks x
(x, y, z) per video frame. NaN marks a missing value (a missed detection); a whole frame may be NaN.

File formats (the output is written atomically in the input's format, chosen by the suffix):

- ``.json``: nested lists ``[[[x, y, z], ...478 points], ...frames]`` (MediaPipe dumps);
  ``null`` = missing. A frame that is ``null`` or ``[]`` is a missing frame.
- ``.csv``: one row per frame, a header row ``p0_x,p0_y,p0_z,p1_x,...`` (``p<point>_<coord>``, coords
  named x, y, z, or c0, c1, ... when there are more than three); an empty cell or ``nan`` = missing.
  A leading ``frame`` column, if present, is ignored on reading and written back.
- ``.npy``: the (frames, points, coords) array itself (float32/float64 kept).

Bad input raises ``InputError`` with one line naming the file: ragged nested lists, a rank other than
3, fewer than ``MIN_FRAMES`` frames, no observed value at all, a point (or coordinate of a point) that
is never observed (nothing to fill it from), or Inf values.
"""
from __future__ import annotations

import csv
import io as _io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.io import atomic_write, save_npy

SEQUENCE_SUFFIXES = (".json", ".csv", ".npy")
#: Fewest frames accepted: the smoothers' windows and the 1-D hourglass (two 2x down-samplings)
#: need some temporal context.
MIN_FRAMES = 8
_COORD_NAMES = ("x", "y", "z")


@dataclass
class SequenceInfo:
    """What ``write_sequence`` needs to give back the input's form."""

    path: str = ""
    dtype: str | None = None  # NPY: the input's float dtype (None: the array's own, float32 for integers)
    frame_column: bool = False  # CSV with a leading ``frame`` column


def _fail(name, what: str) -> InputError:
    return InputError(f"{name}: {what}")


def check_sequence(array, name: str = "sequence") -> np.ndarray:
    """Validate a (frames, points, coords) array and return it as float64 (NaN = missing)."""
    arr = np.asarray(array)
    if arr.dtype == object:
        raise _fail(name, "ragged array (frames or points of different lengths)")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise _fail(name, f"unsupported data type {arr.dtype}")
    if arr.ndim != 3:
        raise _fail(name, f"expected frames x points x coords (3 axes), got shape {arr.shape}; "
                          "a single signal is shape (frames, 1, coords)")
    frames, points, coords = arr.shape
    if points == 0 or coords == 0:
        raise _fail(name, f"no points or coordinates (shape {arr.shape})")
    if frames < MIN_FRAMES:
        raise _fail(name, f"{frames} frame(s); at least {MIN_FRAMES} are needed")
    arr = arr.astype(np.float64)
    if np.isinf(arr).any():
        raise _fail(name, f"contains {int(np.isinf(arr).sum())} Inf value(s)")
    observed = ~np.isnan(arr)
    never = ~observed.any(axis=0)  # (points, coords)
    if never.all():
        raise _fail(name, "every value is missing (NaN)")
    if never.any():
        p, c = np.argwhere(never)[0]
        n = int(never.any(axis=1).sum())
        raise _fail(name, f"point {p} coordinate {c} is missing (NaN) in every frame ({n} point(s) never observed); "
                          "drop such points before denoising")
    return arr


def gap_summary(array: np.ndarray) -> dict:
    """Counts of missing values: NaN entries, whole missing frames, and runs of missing frames."""
    missing = np.isnan(array)
    frame_missing = missing.all(axis=(1, 2))
    runs = int(np.sum(np.diff(np.concatenate([[0], frame_missing.astype(int)])) == 1))
    return {"missing_values": int(missing.sum()), "missing_frames": int(frame_missing.sum()),
            "missing_frame_runs": runs, "partly_missing_frames": int((missing.any(axis=(1, 2)) & ~frame_missing).sum())}


def fill_gaps(array: np.ndarray) -> np.ndarray:
    """Linear interpolation over time of each channel's NaN values (nearest value beyond the ends)."""
    out = np.array(array, dtype=np.float64, copy=True)
    flat = out.reshape(out.shape[0], -1)
    missing = np.isnan(flat)
    if not missing.any():
        return out
    t = np.arange(flat.shape[0])
    for ch in np.flatnonzero(missing.any(axis=0)):
        m = missing[:, ch]
        flat[m, ch] = np.interp(t[m], t[~m], flat[~m, ch])
    return out


def spline_fill(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Replace the unobserved entries of ``values`` (frames, channels) by a cubic spline over time
    through the observed ones of the same channel (the nearest observed value beyond the ends)."""
    from scipy.interpolate import CubicSpline

    out = np.array(values, dtype=np.float64, copy=True)
    t = np.arange(out.shape[0])
    patterns: dict[bytes, list[int]] = {}
    for ch in np.flatnonzero(~observed.all(axis=0)):
        patterns.setdefault(observed[:, ch].tobytes(), []).append(ch)
    for channels in patterns.values():
        seen = observed[:, channels[0]]
        known, unknown = t[seen], t[~seen]
        if len(known) < 2:
            out[np.ix_(unknown, channels)] = out[known[0], channels] if len(known) else 0.0
            continue
        inside = unknown[(unknown > known[0]) & (unknown < known[-1])]
        if len(inside):
            out[np.ix_(inside, channels)] = CubicSpline(known, out[np.ix_(known, channels)], axis=0)(inside)
        for edge, sel in ((known[0], unknown < known[0]), (known[-1], unknown > known[-1])):
            if sel.any():
                out[np.ix_(unknown[sel], channels)] = out[edge, channels]
    return out


# ---------------------------------------------------------------------------------------------- IO

def is_sequence_file(path: str | os.PathLike) -> bool:
    """True for ``.json`` and ``.csv`` (always sequences); ``.npy`` is ambiguous (image or sequence)."""
    return Path(path).suffix.lower() in (".json", ".csv")


def _read_json(path: Path) -> np.ndarray:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail(path, f"not valid JSON ({e})") from None
    if not isinstance(data, list) or not data:
        raise _fail(path, "expected a non-empty list of frames [[[x, y, z], ...], ...]")
    # Missing frames (null or []) take the shape of the others.
    shapes = set()
    for f in data:
        if f is None or f == []:
            continue
        if not isinstance(f, list):
            raise _fail(path, "expected a list of frames, each a list of points [x, y, z]")
        lengths = {len(p) if isinstance(p, list) else -1 for p in f}
        if -1 in lengths:
            raise _fail(path, "expected frames x points x coords nested lists [[[x, y, z], ...], ...]; "
                              "found a point that is not a list")
        if len(lengths) != 1:
            raise _fail(path, "ragged data: every point must be a list of the same number of coordinates")
        shapes.add((len(f), lengths.pop()))
    if not shapes:
        raise _fail(path, "every frame is missing")
    if len(shapes) != 1:
        raise _fail(path, f"ragged data: frames have different shapes (points, coords) {sorted(shapes)[:3]}")
    points, coords = shapes.pop()
    if points == 0 or coords == 0:
        raise _fail(path, "frames hold no points or no coordinates")
    rows = [f if f not in (None, []) else [[None] * coords] * points for f in data]
    try:
        return np.array(rows, dtype=np.float64)  # None -> nan
    except (TypeError, ValueError):
        raise _fail(path, "values must be numbers or null") from None


def csv_header(points: int, coords: int) -> list[str]:
    names = _COORD_NAMES if coords <= 3 else tuple(f"c{i}" for i in range(coords))
    return [f"p{p}_{names[c]}" for p in range(points) for c in range(coords)]


def _read_csv(path: Path) -> tuple[np.ndarray, bool]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _fail(path, "not a text CSV file") from None
    rows = [r for r in csv.reader(_io.StringIO(text)) if r]
    if len(rows) < 2:
        raise _fail(path, "expected a header row p0_x,p0_y,... and one row per frame")
    header = [h.strip() for h in rows[0]]
    frame_column = header[0].lower() == "frame"
    if frame_column:
        header = header[1:]
    names = []
    for h in header:
        point, _, coord = h.partition("_")
        if not point.startswith("p") or not point[1:].isdigit() or not coord:
            raise _fail(path, f"unexpected column '{h}' (expected p<point>_<coord>, e.g. p0_x)")
        names.append((int(point[1:]), coord))
    first = [c for q, c in names if q == 0]
    points, coords = (len(names) // len(first), len(first)) if first else (0, 0)
    if not first or names != [(p, c) for p in range(points) for c in first]:
        raise _fail(path, "columns must be p0_x,p0_y,...,p1_x,... for points 0..N-1, each with the same coordinates")
    width = len(header) + frame_column
    values = np.full((len(rows) - 1, len(header)), np.nan)
    for i, r in enumerate(rows[1:]):
        if len(r) != width:
            raise _fail(path, f"row {i + 2} has {len(r)} cells, the header {width} (ragged)")
        for j, cell in enumerate(r[frame_column:]):
            cell = cell.strip()
            if cell and cell.lower() != "nan":
                try:
                    values[i, j] = float(cell)
                except ValueError:
                    raise _fail(path, f"row {i + 2}, column {header[j]}: '{cell}' is not a number") from None
    return values.reshape(len(rows) - 1, points, coords), frame_column


def read_sequence(path: str | os.PathLike) -> tuple[np.ndarray, SequenceInfo]:
    """Read a JSON/CSV/NPY sequence into a validated float64 array (frames, points, coords)."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "no such file" if not path.exists() else "not a file")
    if path.stat().st_size == 0:
        raise _fail(path, "file is empty (0 bytes)")
    suffix = path.suffix.lower()
    info = SequenceInfo(path=str(path))
    if suffix == ".json":
        arr = _read_json(path)
    elif suffix == ".csv":
        arr, info.frame_column = _read_csv(path)
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as e:
            raise _fail(path, f"not a readable NPY array ({e})") from None
        info.dtype = str(arr.dtype) if np.issubdtype(arr.dtype, np.floating) else "float32"
    else:
        raise _fail(path, f"unsupported sequence format '{suffix}' (use {', '.join(SEQUENCE_SUFFIXES)})")
    return check_sequence(arr, str(path)), info


def write_sequence(path: str | os.PathLike, array: np.ndarray, info: SequenceInfo | None = None) -> None:
    """Write (frames, points, coords) atomically in the format of the suffix (NaN -> null / empty cell)."""
    path = Path(path)
    suffix = path.suffix.lower()
    arr = np.asarray(array)
    if arr.ndim != 3:
        raise _fail(path, f"expected frames x points x coords, got shape {arr.shape}")
    info = info or SequenceInfo()
    if suffix == ".json":
        rows = [[[None if np.isnan(v) else float(v) for v in p] for p in f] for f in arr.astype(np.float64)]
        text = json.dumps(rows, separators=(",", ":"))
        atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    elif suffix == ".csv":
        def write_csv(tmp):
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow((["frame"] if info.frame_column else []) + csv_header(arr.shape[1], arr.shape[2]))
                for i, frame in enumerate(arr.reshape(arr.shape[0], -1).astype(np.float64)):
                    cells = ["" if np.isnan(v) else repr(float(v)) for v in frame]
                    w.writerow(([str(i)] if info.frame_column else []) + cells)

        atomic_write(path, write_csv)
    elif suffix == ".npy":
        dtype = info.dtype or (arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float32)
        data = arr.astype(dtype)
        atomic_write(path, lambda tmp: save_npy(tmp, data))
    else:
        raise _fail(path, f"unsupported sequence format '{suffix}' (use {', '.join(SEQUENCE_SUFFIXES)})")


def find_outlier_frames(seq: np.ndarray, threshold: float = 5.0, window: int = 5) -> np.ndarray:
    """Indices of frames that jump away from their neighbours as a whole (bad detections).

    Each channel is compared with its running median over ``window`` frames (NaN gaps interpolated
    first); a frame's score is the root mean square of that residual over all channels. A frame is an
    outlier when its score exceeds the median score by more than ``threshold`` robust standard
    deviations (1.4826 x the median absolute deviation). Smooth motion, even fast, follows the running
    median; a blink moves too few points to matter."""
    from scipy.ndimage import median_filter

    x = fill_gaps(seq)
    flat = x.reshape(x.shape[0], -1)
    resid = flat - median_filter(flat, size=(window, 1), mode="nearest")
    score = np.sqrt(np.mean(resid**2, axis=1))
    missing = np.isnan(np.asarray(seq)).all(axis=tuple(range(1, np.ndim(seq))))
    med = np.median(score[~missing])
    mad = 1.4826 * np.median(np.abs(score[~missing] - med)) or 1e-12
    return np.flatnonzero((score > med + threshold * mad) & ~missing)
