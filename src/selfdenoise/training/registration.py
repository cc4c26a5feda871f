"""Aligning repeated frames of one scene (B-scans moved by eye motion, stage drift) by integer translations."""
from __future__ import annotations

import numpy as np
from torch import Tensor


def frame_shift(reference: Tensor, frame: Tensor, max_shift: float = 0.125, blur: float = 2.0,
                min_correlation: float = 0.5) -> tuple[int, int]:
    """Integer translation (dy, dx) with ``frame[y + dy, x + dx]`` ~ ``reference[y, x]``, for two (C, H, W)
    realisations of one scene: the peak of the normalised cross-correlation over the overlap (masked NCC,
    so larger overlaps are not favoured) of the channel means, Gaussian-blurred by ``blur`` pixels so that
    speckle or noise cannot make the peak, searched within ``max_shift`` of each side. (0, 0) when the
    peak correlation is below ``min_correlation`` (flat or unrelated content: nothing to align on)."""
    from scipy import (  # imported when frames are aligned: it costs 0.4 s of every start-up
        fft,
        ndimage,
    )

    a, b = (ndimage.gaussian_filter(t.float().mean(0).numpy().astype(np.float64), blur) for t in (reference, frame))
    a, b = a - a.mean(), b - b.mean()
    h, w = a.shape
    my, mx = int(h * max_shift), int(w * max_shift)
    size = (fft.next_fast_len(h + my), fft.next_fast_len(w + mx))  # padding: linear correlations up to the shift
    dys, dxs = np.r_[0:my + 1, -my:0], np.r_[0:mx + 1, -mx:0]
    window = np.ix_(dys % size[0], dxs % size[1])
    spectra = {k: fft.rfft2(v, size, workers=-1) for k, v in
               (("a", a), ("b", b), ("aa", a * a), ("bb", b * b), ("1", np.ones_like(a)))}

    def corr(u: str, v: str) -> np.ndarray:  # [d] = sum_y u[y] v[y + d], over the window
        return fft.irfft2(np.conj(spectra[u]) * spectra[v], size, workers=-1)[window]

    n = np.outer(h - np.abs(dys), w - np.abs(dxs)).astype(np.float64)  # overlap sizes
    sa, sb = corr("a", "1"), corr("1", "b")
    var_a = np.maximum(corr("aa", "1") - sa * sa / n, 0.0)
    var_b = np.maximum(corr("1", "bb") - sb * sb / n, 0.0)
    ncc = (corr("a", "b") - sa * sb / n) / np.sqrt(np.maximum(var_a * var_b, 1e-12))
    iy, ix = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
    if ncc[iy, ix] < min_correlation:
        return 0, 0
    return int(dys[iy]), int(dxs[ix])


def register_group(frames: list[Tensor], **options) -> tuple[list[Tensor], list[tuple[int, int]]]:
    """Align repeated frames of one scene (e.g. B-scans moved by eye motion) to the first by integer
    translations (``frame_shift``) and crop them all to their common overlap. Integer shifts move pixels
    without resampling, so every frame keeps its own independent noise. Returns the frames and shifts."""
    shifts = [(0, 0)] + [frame_shift(frames[0], f, **options) for f in frames[1:]]
    if not any(dy or dx for dy, dx in shifts):
        return list(frames), shifts
    h, w = frames[0].shape[-2:]
    y0, x0 = max(-dy for dy, _ in shifts), max(-dx for _, dx in shifts)
    y1, x1 = min(h - dy for dy, _ in shifts), min(w - dx for _, dx in shifts)
    return [f[:, y0 + dy:y1 + dy, x0 + dx:x1 + dx].contiguous() for f, (dy, dx) in zip(frames, shifts)], shifts
