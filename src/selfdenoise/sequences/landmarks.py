"""Seeded synthetic face-landmark tracks (the ``landmarks-synth`` benchmark and the tests).

``synth_track(seed)`` returns ``(noisy, clean, info)``: float32 arrays shaped (frames, points, 3) in
MediaPipe's normalised convention (x, y as fractions of a 640x480 frame, z relative to the head centre
in the same scale as x). Everything below is drawn from ``numpy.random.default_rng(seed)``:

- **Face**: a 3-D point cloud of ``points`` (478) landmarks on the front half of an ellipsoid
  (half-width 0.075, half-height 0.10, depth 0.06 in x units), with a protruding nose and denser rings
  around the eyes and lips.
- **Expressions**: four blend-shape modes (jaw open, smile, brow raise, blink), each a smooth
  displacement field (Gaussian fall-off around its region). Their weights are smooth random processes
  in [0, 1]; blinks are short (about 0.2 s) events every few seconds.
- **Head motion**: yaw/pitch/roll (standard deviations about 12/7/5 degrees), translation (about
  0.04 in x and y) and scale (about 4 %) follow smooth random processes: sums of Gaussian-filtered
  white noise with time scales of 0.3-3 s. Projection is orthographic with that scale.
- **Jitter** (the noise): independent Gaussian noise of ``jitter_px`` pixels (default 1.5 px, i.e.
  0.0023 in x) on every coordinate, z twice as noisy, plus a common per-frame shift of
  ``jitter_px / 3`` pixels (the whole mesh wobbles with its detection box).
- **Outlier frames**: about ``outlier_rate`` (1 %) of the frames are bad fits: the mesh is displaced
  by 8-25 px, scaled by up to 5 % and jittered three times as much. Listed in ``info["outlier_frames"]``.
- **Dropouts**: ``dropout_runs`` (3) runs of 2-12 frames where the face was not detected: all values
  NaN. Listed in ``info["missing_frames"]``.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..core.io import ensure_parent
from .tracks import write_sequence

#: The frame MediaPipe's normalised coordinates refer to (pixels).
FRAME_WIDTH, FRAME_HEIGHT = 640, 480


def face_template(rng: np.random.Generator, points: int = 478) -> np.ndarray:
    """A face-like 3-D point cloud (points, 3), centred on the origin, y pointing down."""
    n_rings = min(points // 4, 96)  # eyes (2 x 24) and lips (2 x 24) rings
    n_surface = points - n_rings
    # front half of an ellipsoid, uniform-ish in the projected face ellipse
    r = np.sqrt(rng.uniform(0, 1, n_surface))
    phi = rng.uniform(0, 2 * np.pi, n_surface)
    u, v = r * np.cos(phi), r * np.sin(phi)
    surface = np.stack([0.075 * u, 0.10 * v, -0.06 * np.sqrt(np.clip(1 - u**2 - v**2, 0, 1))], axis=1)
    nose = np.exp(-(u**2 + (v + 0.05) ** 2) / 0.02)  # nose bump towards the camera (negative z)
    surface[:, 2] -= 0.03 * nose
    rings = []
    centres = [(-0.03, -0.025, 0.012, 0.006), (0.03, -0.025, 0.012, 0.006), (0.0, 0.05, 0.022, 0.010),
               (0.0, 0.05, 0.016, 0.005)]  # left eye, right eye, outer lips, inner lips: cx, cy, rx, ry
    per_ring = [n_rings // 4] * 4
    per_ring[-1] += n_rings - sum(per_ring)
    for (cx, cy, rx, ry), k in zip(centres, per_ring):
        t = np.linspace(0, 2 * np.pi, k, endpoint=False)
        x, y = cx + rx * np.cos(t), cy + ry * np.sin(t)
        z = -0.06 * np.sqrt(np.clip(1 - (x / 0.075) ** 2 - (y / 0.10) ** 2, 0, 1))
        rings.append(np.stack([x, y, z], axis=1))
    cloud = np.concatenate([surface, *rings])[:points]
    return cloud - cloud.mean(axis=0)


def expression_modes(face: np.ndarray) -> np.ndarray:
    """Four blend-shape displacement fields (4, points, 3): jaw open, smile, brow raise, blink."""
    x, y = face[:, 0], face[:, 1]

    def bump(cx, cy, sx, sy):
        return np.exp(-((x - cx) ** 2 / (2 * sx**2) + (y - cy) ** 2 / (2 * sy**2)))

    jaw = np.zeros_like(face)
    jaw[:, 1] = 0.02 * bump(0, 0.09, 0.05, 0.04) * (y > 0.045)  # the lower face drops
    smile = np.zeros_like(face)
    w = bump(0, 0.05, 0.03, 0.015)
    smile[:, 0] = 0.008 * np.sign(x) * w
    smile[:, 1] = -0.004 * w
    brow = np.zeros_like(face)
    brow[:, 1] = -0.006 * (bump(-0.03, -0.05, 0.02, 0.012) + bump(0.03, -0.05, 0.02, 0.012))
    blink = np.zeros_like(face)
    for cx in (-0.03, 0.03):
        e = bump(cx, -0.025, 0.013, 0.008)
        blink[:, 1] += 0.8 * e * (-0.025 - y)  # eye points move to the eye's centre line
    return np.stack([jaw, smile, brow, blink])


def smooth_process(rng: np.random.Generator, frames: int, fps: float, scales_s=(0.3, 1.0, 3.0)) -> np.ndarray:
    """Zero-mean, unit-std smooth random signal: a sum of Gaussian-filtered white noises."""
    total = np.zeros(frames)
    for s in scales_s:
        total += gaussian_filter1d(rng.standard_normal(frames + 200), s * fps, mode="reflect")[100:-100] / np.sqrt(s)
    return (total - total.mean()) / (total.std() + 1e-12)


def _rotation(yaw, pitch, roll) -> np.ndarray:
    """Rotation matrices (frames, 3, 3) from angles in radians."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    ry = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1), np.stack([-sy, zero, cy], -1)], -2)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1), np.stack([zero, sp, cp], -1)], -2)
    rz = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1), np.stack([zero, zero, one], -1)], -2)
    return rz @ rx @ ry


def synth_track(seed: int = 0, frames: int = 900, points: int = 478, fps: float = 30.0, jitter_px: float = 1.5,
                outlier_rate: float = 0.01, dropout_runs: int = 3) -> tuple[np.ndarray, np.ndarray, dict]:
    """One seeded track: ``(noisy, clean, info)``, arrays (frames, points, 3) float32 (see the module doc)."""
    rng = np.random.default_rng(seed)
    face = face_template(rng, points)
    modes = expression_modes(face)
    t = np.arange(frames)
    weights = np.stack([
        np.clip(0.35 + 0.35 * smooth_process(rng, frames, fps, (0.5, 2.0)), 0, 1),  # jaw
        np.clip(0.3 + 0.4 * smooth_process(rng, frames, fps, (1.0, 3.0)), 0, 1),  # smile
        np.clip(0.3 + 0.35 * smooth_process(rng, frames, fps, (0.4, 1.5)), 0, 1),  # brow
        np.zeros(frames),  # blink: short events
    ], axis=1)
    next_blink = rng.uniform(0.5, 4.0) * fps
    while next_blink < frames:
        weights[:, 3] = np.maximum(weights[:, 3], np.exp(-0.5 * ((t - next_blink) / (0.06 * fps)) ** 2))
        next_blink += rng.uniform(1.5, 6.0) * fps
    shape = face[None] + np.einsum("fk,kpc->fpc", weights, modes)
    rot = _rotation(np.radians(12) * smooth_process(rng, frames, fps), np.radians(7) * smooth_process(rng, frames, fps),
                    np.radians(5) * smooth_process(rng, frames, fps))
    scale = 1.0 + 0.04 * smooth_process(rng, frames, fps, (1.0, 3.0))
    centre = np.stack([0.5 + 0.04 * smooth_process(rng, frames, fps), 0.5 + 0.04 * smooth_process(rng, frames, fps),
                       np.zeros(frames)], axis=1)
    clean = scale[:, None, None] * np.einsum("fij,fpj->fpi", rot, shape) + centre[:, None, :]
    clean[..., 1] *= FRAME_WIDTH / FRAME_HEIGHT  # y is a fraction of the (shorter) frame height

    px = 1.0 / FRAME_WIDTH  # x units per pixel
    sigma = jitter_px * px * np.array([1.0, FRAME_WIDTH / FRAME_HEIGHT, 2.0])
    noisy = clean + rng.standard_normal(clean.shape) * sigma
    noisy[..., :2] += rng.standard_normal((frames, 1, 2)) * (jitter_px / 3) * px
    n_out = rng.binomial(frames, outlier_rate)
    outliers = np.sort(rng.choice(frames, size=n_out, replace=False)) if n_out else np.zeros(0, int)
    for f in outliers:
        shift = rng.uniform(8, 25) * px * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a), 0.0])
        c = noisy[f].mean(axis=0)
        noisy[f] = c + (noisy[f] - c) * rng.uniform(0.95, 1.05) + shift
        noisy[f] += rng.standard_normal((points, 3)) * 2 * sigma
    missing: list[int] = []
    for _ in range(dropout_runs):
        length = int(rng.integers(2, 13))
        start = int(rng.integers(0, max(1, frames - length)))
        missing.extend(range(start, min(frames, start + length)))
    missing = sorted(set(missing))
    noisy[missing] = np.nan
    info = {"seed": int(seed), "frames": frames, "points": points, "fps": fps, "jitter_px": jitter_px,
            "jitter_sigma": sigma.tolist(), "outlier_frames": [int(f) for f in outliers], "missing_frames": missing,
            "frame_size": [FRAME_WIDTH, FRAME_HEIGHT]}
    return noisy.astype(np.float32), clean.astype(np.float32), info


def write_synth_track(path, seed: int = 0, clean_path=None, frames: int = 900, points: int = 478) -> dict:
    """Write a noisy synthetic track (and optionally its clean truth) as .json/.csv/.npy; returns ``info``."""
    noisy, clean, info = synth_track(seed, frames, points)
    for p, arr in ((path, noisy), (clean_path, clean)):
        if p is not None:
            ensure_parent(p)
            write_sequence(p, arr)
    return info
