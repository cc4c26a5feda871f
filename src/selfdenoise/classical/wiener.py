"""Collaborative Wiener filtering with a pilot estimate (the second step of BM3D, Dabov et al., IEEE TIP
2007), used to refine a network's denoised image.

Given the noisy image ``y`` and a pilot estimate ``p`` of the clean image (here the output of a network
that never saw a clean image), for reference patches on a grid:

1. **Block matching** on the pilot: the ``group`` patches most similar to the reference (sum of squared
   differences of the pilot's luminance) within a ``window`` x ``window`` neighbourhood.
2. **3-D transform**: the stacked patches of ``y`` and of ``p`` go through an orthonormal 2-D DCT per
   patch and a 1-D DCT across the group.
3. **Empirical Wiener shrinkage**: each coefficient of ``y`` is scaled by ``P^2 / (P^2 + sigma^2)``, with
   ``P`` the pilot's coefficient: the pilot says where the signal is, the noisy image supplies it.
4. **Aggregation**: the inverse transform puts each filtered patch back where it came from, weighted by
   ``1 / (sigma^2 * sum w^2)`` (groups that kept little noise count more), and overlapping estimates are
   averaged.

BM3D's own choices are options, measured against its Wiener stage by ``benchmarks/wiener_parity.py``: groups of
the largest power of 2 of the matches within a distance ``threshold``, the Haar ``transform`` across the group, a
Kaiser window (``kaiser``) weighting the aggregation, and ``shrinkage``, the factor on the noise variance in the
gain (with BM3D's basic estimate as pilot, 0.5 closes the gap to its Wiener stage; 1, the plain empirical Wiener
gain, is the default: after a network's pilot, a smaller variance lost on validation).

Colour images are filtered in an orthonormal opponent colour space (luminance and two chroma channels;
white noise keeps its level there), matching on the luminance. ``passes`` > 1 uses each result as the
next pilot. With ``group=1`` no matching is done: a sliding-window DCT Wiener filter.

``blend_bands`` mixes the refined image with the estimate it started from, with its own share in the low
frequencies (a network's estimate is the better of the two there, the Wiener step in the fine detail).

The noise level ``sigma`` is per channel of the opponent space; ``None`` measures it as the standard
deviation of ``y - p``: the noise the network removed, which also covers real, non-white noise whose
level the white-noise estimators miss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

from ..core.errors import InputError
from ..core.params import whole_or_auto
from ..core.tiling import apply_tiled
from .baselines import bm3d_wiener
from .noise_level import WHITE_RATIO, estimate_sigma, poisson_gaussian_model
from .noise_level import whiteness_ratio as noise_ratio
from .vst import exact_unbiased_inverse, generalized_anscombe

#: rows: luminance, red-blue, (red+blue)/2 - green; normalised below to an orthonormal transform
_OPPONENT = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [0.5, -1.0, 0.5]])


def opponent_matrix() -> Tensor:
    """The orthonormal opponent colour transform (3x3): ``opp = M @ rgb``, ``rgb = M.T @ opp``."""
    return _OPPONENT / _OPPONENT.norm(dim=1, keepdim=True)


def dct_matrix(n: int) -> Tensor:
    """Orthonormal DCT-II matrix (n x n): ``coefficients = D @ signal``."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.float()


def haar_matrix(n: int) -> Tensor:
    """Orthonormal Haar matrix (n x n, n a power of 2): ``coefficients = H @ signal`` (BM3D's 1-D transform)."""
    if n & (n - 1):
        raise ValueError(f"the Haar transform needs a power of 2, not {n}")
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        m = h.shape[0]
        h = torch.cat([torch.kron(h, torch.tensor([[1.0, 1.0]], dtype=torch.float64)),
                       torch.kron(torch.eye(m, dtype=torch.float64), torch.tensor([[1.0, -1.0]], dtype=torch.float64))])
    return (h / h.norm(dim=1, keepdim=True)).float()


def kaiser_window(patch: int, beta: float) -> Tensor:
    """The 2-D Kaiser window (patch x patch, flattened row-major) BM3D weights its aggregation with;
    ``beta`` 0: flat."""
    k = torch.kaiser_window(patch, periodic=False, beta=float(beta), dtype=torch.float64) if patch > 1 else torch.ones(1, dtype=torch.float64)
    return torch.outer(k, k).reshape(-1).float()


def _grid(length: int, patch: int, step: int) -> Tensor:
    """Top-left coordinates from 0 to ``length - patch`` every ``step``, the last one always included."""
    last = length - patch
    g = list(range(0, last + 1, step))
    if g[-1] != last:
        g.append(last)
    return torch.tensor(g)


def _patch_dct(img: Tensor, patch: int, t2: Tensor) -> Tensor:
    """2-D DCT of every patch (stride 1) of ``img`` (C, H, W): (positions, C, patch^2), row-major positions (a
    position's coefficients together, so that gathering a group copies whole rows). A convolution with the DCT's
    basis images, one per coefficient."""
    c = img.shape[0]
    coefficients = F.conv2d(img[:, None], t2.view(-1, 1, patch, patch))  # (C, patch^2, H', W')
    return coefficients.permute(2, 3, 0, 1).reshape(-1, c, patch * patch).contiguous()


def _fold(patches: Tensor, h: int, w: int, patch: int) -> Tensor:
    """Sum of patches (positions, C, patch^2) put back at their positions: (C, H, W)."""
    c = patches.shape[1]
    hp, wp = h - patch + 1, w - patch + 1
    grid = patches.view(hp, wp, c, patch * patch)
    out = torch.zeros(h, w, c)
    for u in range(patch):
        for v in range(patch):
            out[u:u + hp, v:v + wp] += grid[..., u * patch + v]
    return out.permute(2, 0, 1)


def colour_matrix(channels: int) -> Tensor:
    """The transform the filtering works in: the opponent space for RGB, identity otherwise."""
    return opponent_matrix() if channels == 3 else torch.eye(channels)


def removed_variance(removed: Tensor) -> Tensor:
    """Variance per channel of what a denoiser removed, ``noisy - estimate`` (C, H, W)."""
    return removed.flatten(1).var(dim=1)


#: the 1-D transforms across a group
TRANSFORMS = ("dct", "haar")


@dataclass(frozen=True)
class Grouping:
    """How references gather their groups, how a group is transformed and shrunk and how it is put back (see
    ``collaborative_wiener``, whose defaults these are)."""
    window: int = 27
    group: int = 16
    features: int = 6
    threshold: float | None = None
    transform: str = "dct"
    kaiser: float = 0.0
    shrinkage: float = 1.0

    def sizes(self, dist: Tensor) -> Tensor:
        """Members per reference (refs,) from its sorted distances (refs, group): all of them, or with a
        ``threshold`` those within it (at least the reference itself); a power of 2 of them (the largest) with
        a threshold or the Haar transform."""
        refs, group = dist.shape
        if self.threshold is None:
            count = torch.full((refs,), group, dtype=torch.long)
            if self.transform != "haar":
                return count
        else:
            count = (dist <= self.threshold).sum(1).clamp_min(1)
        return 2 ** torch.floor(torch.log2(count.double())).long()

    def matrix(self, n: int) -> Tensor:
        return haar_matrix(n) if self.transform == "haar" else dct_matrix(n)


def collaborative_wiener(noisy: Tensor, pilot: Tensor, sigma: Tensor | float | None = None, *, patch: int = 8,
                         step: int = 3, window: int = Grouping.window, group: int = Grouping.group, passes: int = 1,
                         features: int = Grouping.features, kaiser: float = Grouping.kaiser,
                         transform: str = Grouping.transform, threshold: float | None = Grouping.threshold,
                         shrinkage: float = Grouping.shrinkage, chunk: int = 1024) -> Tensor:
    """Refine ``pilot`` (C, H, W) by collaborative Wiener filtering of ``noisy`` (C, H, W), both in
    [0, 1]; see the module docstring. ``sigma``: noise standard deviation in [0, 1] units (scalar or per
    opponent channel), ``None`` = the standard deviation of ``noisy - pilot`` per opponent channel.
    Matching compares the ``features`` x ``features`` lowest DCT frequencies of the pilot's luminance
    patches (the pilot is smooth, so they hold nearly all of the distance). ``kaiser``: the beta of the
    Kaiser window weighting the aggregation (0: flat); ``transform``: the 1-D transform across a group,
    "dct" or "haar"; ``threshold``: the largest mean squared difference per pixel a member may have ([0, 1]
    units), groups then holding the largest power of 2 of the matches below it (BM3D's grouping; ``None``:
    always ``group`` members); ``shrinkage``: the factor on the noise variance in the gain."""
    if noisy.shape != pilot.shape or noisy.ndim != 3:
        raise ValueError(f"expected two (C, H, W) tensors of one shape, got {tuple(noisy.shape)}, {tuple(pilot.shape)}")
    if transform not in TRANSFORMS:
        raise InputError(f"the group transform is one of {', '.join(TRANSFORMS)}, not {transform!r}")
    c, h, w = noisy.shape
    patch = max(1, min(int(patch), h, w))
    colour = c == 3
    m = colour_matrix(c)
    y = torch.einsum("ij,jhw->ihw", m, noisy.float())
    p = torch.einsum("ij,jhw->ihw", m, pilot.float())
    grouping = Grouping(window, group, features, threshold, transform, kaiser, shrinkage)
    for _ in range(max(1, int(passes))):
        if sigma is None:
            var = removed_variance(y - p).clamp_min(1e-12)
        else:
            var = torch.as_tensor(sigma, dtype=torch.float32).expand(c).clone() ** 2
        p = _filter(y, p, var, patch, step, grouping, chunk)
    return torch.einsum("ij,jhw->ihw", m.T, p) if colour else p


#: the std (pixels) of the Gaussian that ``blend_bands`` takes the low frequencies with
LOW_PASS_SIGMA = 1.0


def blend_bands(refined: Tensor, estimate: Tensor, weight: float, low_weight: float | None = None,
                sigma: float = LOW_PASS_SIGMA) -> Tensor:
    """``estimate + weight * (refined - estimate)`` for (..., H, W) images, with ``low_weight`` (None: ``weight``) in
    place of ``weight`` in the low frequencies: on the difference blurred by a Gaussian of std ``sigma`` pixels
    (mirrored at the borders). Equal weights make it a plain mix; a share of 1 in both gives ``refined`` back. Two
    image-sized buffers at most (the difference, in place, and its blur)."""
    banded = low_weight is not None and low_weight != weight
    if weight == 1.0 and not banded:
        return refined
    diff = refined.float() - estimate.float()
    low = None
    if banded:
        axes = (0,) * (diff.ndim - 2) + (sigma, sigma)
        low = ndimage.gaussian_filter(diff.detach().cpu().numpy(), axes, mode="reflect", truncate=3.0)
    out = diff.mul_(weight).add_(estimate.float())
    if low is not None:
        out.add_(torch.from_numpy(low).to(out.device), alpha=low_weight - weight)
    return out


#: the most (reference, candidate) distances ``_match`` holds at once (16 MB)
MATCH_PAIRS = 1 << 22


def _region(coords: Tensor, radius: int, length: int) -> tuple[int, int]:
    """Start and size of the stretch of positions (along one axis of ``length``) that the windows of radius
    ``radius`` around ``coords`` (ascending) cover: as wide as it would be away from the border, moved inside."""
    first, last = int(coords[0]) - radius, int(coords[-1]) + radius
    size = min(length, last - first + 1)
    return min(max(first, 0), length - size), size


def _match(pdct: Tensor, hp: int, wp: int, rows: Tensor, cols: Tensor, radius: int, group: int,
           features: int, patch: int) -> tuple[Tensor, Tensor]:
    """Positions (refs, group) of the patches most similar to each reference (rows x cols grid, row-major), the
    reference first, and their mean squared differences per pixel (refs, group), ascending; distances on the
    low-frequency DCT coefficients of the pilot's luminance. The grid is matched a block of references at a
    time: their squared distances to every patch of the region their windows cover are one matrix product
    (``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b``, features centred on the block's mean), then each reference keeps
    only its own window. A block spans about the window's radius (fewer references where that would hold more
    than ``MATCH_PAIRS`` distances), so memory does not grow with the image."""
    k = min(features, patch)
    low = (torch.arange(k)[:, None] * patch + torch.arange(k)[None, :]).reshape(-1)
    feats = pdct[:, 0, low].reshape(hp, wp, k * k)
    group = max(1, min(int(group), min(hp, 2 * radius + 1) * min(wp, 2 * radius + 1)))
    spacing = max(1, int(rows[1] - rows[0]) if len(rows) > 1 else 1)
    block = max(1, round(radius / spacing))
    while block > 1 and (block * (block * spacing + 2 * radius)) ** 2 > MATCH_PAIRS:
        block -= 1
    members = torch.empty(len(rows), len(cols), group, dtype=torch.long)
    distances = torch.empty(len(rows), len(cols), group)
    for i in range(0, len(rows), block):
        rr = rows[i:i + block]
        y0, hy = _region(rr, radius, hp)
        far_y = (torch.arange(y0, y0 + hy)[None] - rr[:, None]).abs() > radius  # (block rows, hy)
        for j in range(0, len(cols), block):
            cc = cols[j:j + block]
            x0, hx = _region(cc, radius, wp)
            far_x = (torch.arange(x0, x0 + hx)[None] - cc[:, None]).abs() > radius
            ref = feats[rr[:, None], cc[None, :]].reshape(-1, k * k)
            centre = ref.mean(0)
            ref = ref - centre
            cand = feats[y0:y0 + hy, x0:x0 + hx].reshape(-1, k * k) - centre
            dist = torch.addmm(cand.square().sum(1)[None], ref, cand.T, alpha=-2.0).add_(ref.square().sum(1)[:, None])
            far = far_y[:, None, :, None] | far_x[None, :, None, :]
            dist.view(len(rr), len(cc), hy, hx).masked_fill_(far, math.inf)
            own = ((rr - y0)[:, None] * hx + (cc - x0)[None, :]).reshape(-1)
            dist[torch.arange(len(own)), own] = -1.0  # the reference itself comes first
            best = dist.topk(group, dim=1, largest=False)  # ascending
            at = (y0 + best.indices // hx) * wp + x0 + best.indices % hx
            members[i:i + len(rr), j:j + len(cc)] = at.view(len(rr), len(cc), group)
            distances[i:i + len(rr), j:j + len(cc)] = best.values.view(len(rr), len(cc), group)
    return members.view(-1, group), distances.view(-1, group).clamp_min(0.0) / (patch * patch)


def _filter(y: Tensor, p: Tensor, var: Tensor, patch: int, step: int, grouping: Grouping, chunk: int) -> Tensor:
    c, h, w = y.shape
    hp, wp = h - patch + 1, w - patch + 1
    pp = patch * patch
    t2 = torch.kron(dct_matrix(patch), dct_matrix(patch))  # 2-D DCT on flattened patches
    ydct, pdct = _patch_dct(y, patch, t2), _patch_dct(p, patch, t2)  # (positions, c, patch^2)
    members, dist = _match(pdct, hp, wp, _grid(h, patch, step), _grid(w, patch, step),
                           max(0, int(grouping.window) // 2), grouping.group, grouping.features, patch)
    sizes = grouping.sizes(dist)
    ydct, pdct = ydct.view(-1, c * pp), pdct.view(-1, c * pp)
    acc = torch.zeros_like(ydct)  # weighted sums of filtered patches, in the DCT domain (it is linear)
    wsum = torch.zeros(ydct.shape[0], c)
    v = grouping.shrinkage * var.view(1, 1, c, 1)
    for size in sizes.unique().tolist():
        t1 = grouping.matrix(size)
        chosen = members[sizes == size, :size]
        for s in range(0, chosen.shape[0], chunk):
            flat = chosen[s:s + chunk].T.reshape(-1)  # (size * n,), member-major
            n = flat.shape[0] // size
            # 1-D transform across the group: (size, size) @ (size, n * c * patch^2)
            cy = (t1 @ ydct.index_select(0, flat).view(size, -1)).view(size, n, c, pp)
            cp = (t1 @ pdct.index_select(0, flat).view(size, -1)).view(size, n, c, pp)
            gain = cp.square_()
            gain = gain.div_(gain + v)
            weight = 1.0 / (var.view(1, c) * gain.square().sum(dim=(0, 3))).clamp_min(1e-12)  # (n, c)
            est = (t1.T @ gain.mul_(cy).view(size, -1)).view(size, n, c, pp) * weight[None, :, :, None]
            acc.index_add_(0, flat, est.view(size * n, c * pp))
            wsum.index_add_(0, flat, weight[None].expand(size, n, c).reshape(-1, c))
    window = kaiser_window(patch, grouping.kaiser).view(1, 1, pp)
    num = _fold(window * (acc.view(-1, pp) @ t2).view(-1, c, pp), h, w, patch)  # inverse 2-D DCT, back in place
    den = _fold(window * wsum[:, :, None], h, w, patch)
    return torch.where(den > 0, num / den.clamp_min(1e-12), p)


#: ``refine="auto"``: passes when the noise looks white; none when it is spatially correlated. Selected on
#: the single-image validation split after zero-shot (McMaster, sigma 25, every 3rd image;
#: ``benchmarks/selection/single-image-zero-shot-refine.json``): 0 / 1 / 2 / 3 passes gave 29.04 / 30.23 /
#: 30.67 / 30.87 dB at 8.9 / 14.7 / 16.4 / 21.0 s per image (window 27). The zero-shot search window
#: (``refine_window``), on the same split with 3 passes (``...-refine_window-features6.json``): 19 / 27 / 39
#: gave 30.77 / 30.87 / 30.96 dB at 20.7 / 21.6 / 28.1 s per image; then its matching features
#: (``refine_features``, ``...-refine_features.json``, window 39): 4 / 6 / 8 per side gave 30.88 / 30.96 /
#: 31.01 dB at 23.8 / 28.2 / 40.2 s per image, so zero-shot compares all 8x8; then the window again with 8x8
#: (``...-refine_window.json``): 39 / 51 gave 31.01 / 31.07 dB at 43.5 / 60.6 s per image, so zero-shot uses 51.
AUTO_PASSES = 3
#: what filters the refinement's passes: this module's collaborative Wiener filter, or BM3D's own second stage
ENGINES = ("wiener", "bm3d")


def check_passes(refine, owner: str = "refine") -> int | str:
    """A number of passes >= 0, or "auto"; anything else is an ``InputError`` naming ``owner``."""
    return whole_or_auto(refine, 0, f"{owner}: refine is a number of passes >= 0 or 'auto'")


def whiteness_ratio(noisy: Tensor) -> float:
    """``noise_level.whiteness_ratio`` of ``noisy`` (1, C, H, W); at low noise texture inflates it (Kodak,
    sigma 5: 1.6-2.9), so "auto" forgoes the refinement there."""
    return noise_ratio(noisy[0].permute(1, 2, 0).float().cpu().numpy())


def correlated(noisy: Tensor) -> bool:
    """Whether the noise of ``noisy`` (1, C, H, W) counts as spatially correlated: ``whiteness_ratio`` >=
    ``noise_level.WHITE_RATIO`` (the decision every "auto" setting of the refinement takes)."""
    return whiteness_ratio(noisy) >= WHITE_RATIO


def resolve_passes(refine: int | str, noisy: Tensor) -> int:
    """``refine`` passes, with "auto" = ``AUTO_PASSES`` on white noise, 0 on correlated noise (measured
    on every 10th PolyU pair, two passes lost 0.5 dB after both zero-shot and asym-mask)."""
    if refine != "auto":
        return int(refine)
    return 0 if correlated(noisy) else AUTO_PASSES


def refine_auto(noisy: Tensor, estimate: Tensor, refine: int | str, sigma: float | None = None,
                tile: int | None = None, vst: bool | None = False, **match) -> Tensor:
    """``estimate`` after the passes ``refine`` resolves to on ``noisy`` (as is when there are none). ``vst``
    None: on white, signal-dependent noise (fitted by ``noise_level.poisson_gaussian_model``, only when no
    ``sigma`` is given) the passes run through the generalized Anscombe transform (``refine_through_vst``);
    off by default until selected on validation data (the fit also fires on small clipped Gaussian images).
    ``match``: ``window``/``features`` of ``collaborative_wiener``, or ``engine="bm3d"``: BM3D's own Wiener stage
    in its place (gray images; the optional bm3d package)."""
    passes = resolve_passes(refine, noisy)
    if not passes:
        return estimate
    model = None
    if sigma is None and vst is not False:
        model = poisson_gaussian_model(noisy[0].permute(1, 2, 0).float().cpu().numpy())
    if model is not None:
        return refine_through_vst(noisy, estimate, passes, model, tile, **match)
    return refine_estimate(noisy.float(), estimate, passes, sigma, tile, **match)


def refine_through_vst(noisy: Tensor, estimate: Tensor, passes: int, model: tuple[float, float, float],
                       tile: int | None = None, **match) -> Tensor:
    """``refine_estimate`` for Poisson-Gaussian noise ``model`` = (gain, sigma, mu) of
    ``vst.generalized_anscombe``: the noisy image and the pilot go through the transform (noise std 1 there),
    scaled to [0, 1] by the noisy image's range, are refined with that level (or what the pilot removed there,
    if larger: ``noise_std``; a fit on clipped or quantised data under-rates the noise) and come back through
    the exact unbiased inverse, as BM3D is run on such data (Makitalo & Foi)."""
    gain, read, mu = model
    f = generalized_anscombe(noisy.float().cpu().numpy(), gain, read, mu)
    p = generalized_anscombe(estimate.float().cpu().numpy(), gain, read, mu)
    lo, hi = float(f.min()), float(f.max())
    span = hi - lo if hi > lo else 1.0
    scaled = lambda a: torch.from_numpy(((a - lo) / span).astype("float32"))  # noqa: E731
    f_, p_ = scaled(f), scaled(p)
    out = _tiled_wiener(f_, p_, noise_std(f_, p_, 1.0 / span), passes, tile, **match).double().numpy()
    return torch.from_numpy(exact_unbiased_inverse(out * span + lo, gain, read, mu).astype("float32")).to(noisy.device)


def refine_estimate(noisy: Tensor, pilot: Tensor, passes: int, sigma: float | None = None,
                    tile: int | None = None, **match) -> Tensor:
    """``passes`` of collaborative Wiener filtering of ``noisy`` (1, C, H, W) with ``pilot`` (a
    denoiser's output) as the first pilot; noise variance per opponent channel = max(``sigma``^2 or
    the patch-PCA estimate^2, variance of ``noisy - pilot``): real, spatially correlated noise is
    under-rated by the white-noise estimate, not by what the denoiser removed. Tiled like inference
    above 1 Mpixel (or at ``tile`` pixels). ``match``: ``window``/``features`` of ``collaborative_wiener``."""
    device = noisy.device  # the filtering itself runs on the CPU (index-heavy); the result goes back
    noisy, pilot = noisy.cpu(), pilot.cpu()
    level = float(sigma) if sigma is not None else estimate_sigma(noisy[0].permute(1, 2, 0).cpu().numpy()) / 255.0
    return _tiled_wiener(noisy, pilot, noise_std(noisy, pilot, level), passes, tile, **match).to(device)


def noise_std(noisy: Tensor, pilot: Tensor, level: float) -> Tensor:
    """Noise standard deviation per opponent channel of (1, C, H, W) ``noisy`` for the refinement: the larger
    of ``level`` (an estimate or a known value) and what the pilot removed, so that noise the estimate misses
    (correlated, clipped or quantised) is still filtered rather than kept."""
    c = noisy.shape[1]
    removed = removed_variance(torch.einsum("ij,jhw->ihw", colour_matrix(c), (noisy - pilot)[0].float()))
    return removed.clamp_min(level**2).sqrt()


def _tiled_wiener(noisy: Tensor, pilot: Tensor, std: Tensor | float, passes: int, tile: int | None,
                  engine: str = "wiener", **match) -> Tensor:
    """``collaborative_wiener`` of (1, C, H, W) ``noisy`` with ``pilot``, tiled like inference; ``engine`` "bm3d":
    BM3D's own Wiener stage (``baselines.bm3d_wiener``, the optional bm3d package) in its place."""
    c = noisy.shape[1]
    if engine not in ENGINES:
        raise InputError(f"refine_filter is one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "bm3d":
        run = lambda t: bm3d_wiener(t[0, :c], t[0, c:], float(torch.as_tensor(std).max()), passes)[None]  # noqa: E731
    else:
        run = lambda t: collaborative_wiener(t[0, :c], t[0, c:], std, passes=passes, **match)[None]  # noqa: E731
    return apply_tiled(run, torch.cat([noisy, pilot], 1).float(), tile)
