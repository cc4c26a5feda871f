"""Synthetic noise models built from short spec strings, with explicit seeding.

Spec grammar: ``KIND:VALUE`` or ``KIND:LOW-HIGH`` (case and whitespace are
ignored). A range draws one parameter per sample, uniformly in [LOW, HIGH].

=============  ==============================================================
``gauss:S``    additive Gaussian, sigma S in 0-255 units (noise std S/255).
``poisson:L``  ``Poisson(L * x) / L`` (Noise2Noise convention); L > 0.
``bernoulli:P`` each pixel is dropped (set to 0 in all channels) with
               probability P; ``sample`` also returns the validity mask.
``impulse:P``  each pixel, with probability P, is replaced by a colour drawn
               uniformly from [0, 1] independently per channel (Noise2Noise
               random-valued impulse noise).
``text:P``     random strings of random colours and sizes are drawn until
               about a fraction P of the pixels is covered.
``speckle:S``  multiplicative ``x * (1 + S * n)``, n ~ N(0, 1) per value.
=============  ==============================================================

Specs joined by ``+`` are applied in turn: ``poisson:20+gauss:25.5`` is Poisson-Gaussian noise (20
photons at full scale, then read noise of 2 photons = 25.5 in 0-255 units).

Gaussian, Poisson and speckle outputs are not clipped (benchmark convention);
the other kinds stay in [0, 1] by construction.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .errors import InputError

__all__ = [
    "NoiseModel",
    "GaussianNoise",
    "PoissonNoise",
    "BernoulliNoise",
    "ImpulseNoise",
    "TextNoise",
    "SpeckleNoise",
    "NOISE_KINDS",
    "NoiseChain",
    "parse_noise",
    "add_noise",
]

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?"
_SINGLE_RE = re.compile(rf"^({_NUM})$")
_RANGE_RE = re.compile(rf"^({_NUM})-({_NUM})$")


def _fmt(value: float) -> str:
    """Short (``25``, ``0.5``) where that is exact, else the shortest text that parses back to ``value``."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


@dataclass(frozen=True)
class NoiseModel:
    """Base class: a noise kind with a fixed parameter (low == high) or a range."""

    low: float
    high: float

    kind = "base"

    @property
    def spec(self) -> str:
        """Canonical spec string; ``parse_noise(m.spec) == m``."""
        if self.low == self.high:
            return f"{self.kind}:{_fmt(self.low)}"
        return f"{self.kind}:{_fmt(self.low)}-{_fmt(self.high)}"

    @property
    def sigma_255(self) -> float | None:
        """Fixed Gaussian sigma in 0-255 units; None unless ``gauss:S``."""
        return None

    def __str__(self) -> str:
        return self.spec

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noisy copy of ``x`` ((C,H,W) or (B,C,H,W), float in [0, 1])."""
        return self.sample(x, generator)[0]

    def sample(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(noisy, mask)``; mask (1 = observed) only for Bernoulli, else None."""
        if not isinstance(x, torch.Tensor):
            raise InputError(f"noise {self.spec}: expected a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise InputError(f"noise {self.spec}: expected a float tensor in [0, 1], got dtype {x.dtype}")
        if x.dim() not in (3, 4):
            raise InputError(
                f"noise {self.spec}: expected shape (C,H,W) or (B,C,H,W), got {tuple(x.shape)}"
            )
        single = x.dim() == 3
        batch = x.unsqueeze(0) if single else x
        # Random numbers are drawn on the generator's device so that a CPU
        # generator gives the same result whatever device ``x`` lives on.
        dev = generator.device if generator is not None else batch.device
        work = batch.to(dev)
        params = self._draw_params(work.shape[0], generator, dev, work.dtype)
        noisy, mask = self._apply(work, params, generator)
        noisy = noisy.to(x.device)
        if mask is not None:
            mask = mask.to(x.device)
        if single:
            noisy = noisy[0]
            mask = mask[0] if mask is not None else None
        return noisy, mask

    def _draw_params(self, n: int, generator, device, dtype) -> torch.Tensor:
        if self.low == self.high:
            return torch.full((n,), float(self.low), device=device, dtype=dtype)
        u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
        return (self.low + (self.high - self.low) * u).to(dtype)

    def _apply(self, x, params, generator):  # pragma: no cover - abstract
        raise NotImplementedError


def _per_sample(params: torch.Tensor) -> torch.Tensor:
    return params.view(-1, 1, 1, 1)


@dataclass(frozen=True)
class GaussianNoise(NoiseModel):
    """Additive white Gaussian noise; parameter is sigma in 0-255 units."""

    kind = "gauss"

    @property
    def sigma_255(self) -> float | None:
        return float(self.low) if self.low == self.high else None

    def _apply(self, x, params, generator):
        n = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + _per_sample(params) / 255.0 * n, None


@dataclass(frozen=True)
class PoissonNoise(NoiseModel):
    """Shot noise ``Poisson(lam * x) / lam``: mean x, variance x / lam."""

    kind = "poisson"

    def _apply(self, x, params, generator):
        lam = _per_sample(params)
        rate = (x.clamp_min(0.0) * lam).to(torch.float64)
        counts = torch.poisson(rate, generator=generator)
        return (counts / lam.to(torch.float64)).to(x.dtype), None


def _pixel_hits(x: torch.Tensor, params: torch.Tensor, generator) -> torch.Tensor:
    """Per-pixel Bernoulli(p) draws shared by all channels: a (B, 1, H, W) bool tensor."""
    b, _, h, w = x.shape
    u = torch.rand((b, 1, h, w), generator=generator, device=x.device, dtype=torch.float64)
    return u < _per_sample(params).to(torch.float64)


@dataclass(frozen=True)
class BernoulliNoise(NoiseModel):
    """Pixels dropped (all channels set to 0) with probability p; mask is (B,1,H,W)."""

    kind = "bernoulli"

    def _apply(self, x, params, generator):
        mask = (~_pixel_hits(x, params, generator)).to(x.dtype)
        return x * mask, mask


@dataclass(frozen=True)
class ImpulseNoise(NoiseModel):
    """Random-valued impulse noise: with probability p a pixel gets a uniform random colour."""

    kind = "impulse"

    def _apply(self, x, params, generator):
        hit = _pixel_hits(x, params, generator)
        values = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return torch.where(hit, values, x), None


@dataclass(frozen=True)
class SpeckleNoise(NoiseModel):
    """Multiplicative noise ``x * (1 + s * n)`` with n ~ N(0, 1) per value."""

    kind = "speckle"

    def _apply(self, x, params, generator):
        n = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x * (1.0 + _per_sample(params) * n), None


_TEXT_CHARS = string.ascii_letters + string.digits
_TEXT_MAX_STRINGS = 4000


@lru_cache(maxsize=64)
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed-size bitmap font
        return ImageFont.load_default()


def _text_labels(h: int, w: int, p: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Label image: 0 = untouched, k = covered by the k-th string (later strings on top)."""
    from PIL import Image, ImageDraw

    labels = Image.new("I", (w, h), 0)
    draw = ImageDraw.Draw(labels)
    draw.fontmode = "1"  # no antialiasing: every pixel belongs to one string or none
    target = p * h * w
    side = min(h, w)
    lo_size = max(6, side // 16)
    hi_size = max(lo_size + 1, side // 4)
    count = 0
    while count < _TEXT_MAX_STRINGS:
        if np.count_nonzero(np.asarray(labels)) >= target:
            break
        count += 1
        length = int(rng.integers(3, 13))
        text = "".join(rng.choice(list(_TEXT_CHARS), size=length))
        size = int(rng.integers(lo_size, hi_size + 1))
        xy = (int(rng.integers(-size, w)), int(rng.integers(-size, h)))
        draw.text(xy, text, fill=count, font=_font(size))
    return np.asarray(labels, dtype=np.int64), count


@dataclass(frozen=True)
class TextNoise(NoiseModel):
    """Random text overlay covering about a fraction p of the pixels (Noise2Noise style)."""

    kind = "text"

    def _apply(self, x, params, generator):
        b, c, h, w = x.shape
        out = x.clone()
        for i in range(b):
            p = float(params[i])
            if p <= 0.0:
                continue
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=x.device).item())
            rng = np.random.default_rng(seed)
            labels, count = _text_labels(h, w, p, rng)
            if count == 0:
                continue
            # Colour table: row 0 unused, row k is the colour of string k.
            colours = np.concatenate([np.zeros((1, c)), rng.random((count, c))]).astype(np.float32)
            painted = torch.from_numpy(colours[labels]).permute(2, 0, 1).to(x.device, x.dtype)
            covered = torch.from_numpy(labels > 0).to(x.device)
            out[i] = torch.where(covered, painted, out[i])
        return out, None


@dataclass(frozen=True)
class NoiseChain(NoiseModel):
    """Noise models applied in turn (spec ``A+B``), e.g. photon noise then read noise; the masks of
    masking kinds are combined."""

    parts: tuple[NoiseModel, ...] = ()
    kind = "chain"

    @property
    def spec(self) -> str:
        return "+".join(p.spec for p in self.parts)

    def sample(self, x, generator=None):
        mask = None
        for part in self.parts:
            x, m = part.sample(x, generator)
            mask = m if mask is None else mask if m is None else mask * m
        return x, mask


_MODELS: dict[str, type[NoiseModel]] = {
    m.kind: m
    for m in (GaussianNoise, PoissonNoise, BernoulliNoise, ImpulseNoise, TextNoise, SpeckleNoise)
}
_ALIASES = {"gaussian": "gauss", "awgn": "gauss", "shot": "poisson"}
_PROBABILITY_KINDS = {"bernoulli", "impulse", "text"}
NOISE_KINDS: tuple[str, ...] = tuple(_MODELS)


def parse_noise(spec: str | NoiseModel) -> NoiseModel:
    """Build a noise model from a spec such as ``gauss:25`` or ``poisson:5-50``.

    Raises InputError naming the spec for any malformed or out-of-range value.
    An existing NoiseModel is returned unchanged.
    """
    if isinstance(spec, NoiseModel):
        return spec
    if not isinstance(spec, str):
        raise InputError(f"noise spec must be a string like 'gauss:25', got {type(spec).__name__}")

    def fail(why: str) -> InputError:
        return InputError(f"noise spec {spec!r}: {why}")

    text = "".join(spec.split()).lower()
    if not text:
        raise fail("empty; expected KIND:VALUE, e.g. 'gauss:25'")
    parts = re.split(r"\+(?=[a-z])", text)  # a '+' before a kind name joins specs; before a number it is a sign
    if len(parts) > 1:
        if not all(parts):
            raise fail("empty part in a '+' chain")
        return NoiseChain(0.0, 0.0, tuple(_parse_one(p, fail) for p in parts))
    return _parse_one(text, fail)


def _parse_one(text: str, fail) -> NoiseModel:
    """One ``KIND:VALUE`` or ``KIND:LOW-HIGH`` spec (whitespace removed, lower case)."""
    kind, sep, value = text.partition(":")
    kind = _ALIASES.get(kind, kind)
    if kind not in _MODELS:
        raise fail(f"unknown noise kind {kind!r} (expected one of {', '.join(NOISE_KINDS)})")
    if not sep or not value:
        raise fail(f"missing parameter; expected '{kind}:VALUE' or '{kind}:LOW-HIGH'")
    if value.startswith("-") or value.startswith("+-") or "--" in value:
        raise fail("parameter must not be negative")
    if value.startswith("+"):
        value = value[1:]
    if m := _SINGLE_RE.match(value):
        low = high = float(m.group(1))
    elif m := _RANGE_RE.match(value):
        low, high = float(m.group(1)), float(m.group(2))
    else:
        raise fail(f"parameter {value!r} is not a number or a LOW-HIGH range")
    if not (np.isfinite(low) and np.isfinite(high)):
        raise fail("parameter must be finite")
    if low > high:
        raise fail(f"reversed range {_fmt(low)}-{_fmt(high)} (LOW must not exceed HIGH)")
    if kind in _PROBABILITY_KINDS and high > 1.0:
        raise fail(f"{kind} probability must lie in [0, 1]")
    if kind == "poisson" and low <= 0.0:
        raise fail("poisson lambda must be positive")
    return _MODELS[kind](low, high)


def add_noise(image: np.ndarray, spec: str | NoiseModel, seed: int = 0) -> np.ndarray:
    """Noisy float32 copy of an (H,W) or (H,W,C) float image in [0, 1].

    Deterministic for a given ``seed``; each call uses its own generator, so
    ``seed=base + index`` gives reproducible, independent noise per image.
    """
    model = parse_noise(spec)
    arr = np.asarray(image)
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(
            f"add_noise: expected a float image in [0, 1], got dtype {arr.dtype} (divide by 255 first)"
        )
    if arr.ndim not in (2, 3):
        raise InputError(f"add_noise: expected shape (H,W) or (H,W,C), got {arr.shape}")
    gray = arr.ndim == 2
    chw = arr[None] if gray else np.moveaxis(arr, -1, 0)
    x = torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32))
    generator = torch.Generator().manual_seed(int(seed))
    noisy = model(x, generator).numpy()
    out = noisy[0] if gray else np.moveaxis(noisy, 0, -1)
    return np.ascontiguousarray(out, dtype=np.float32)
