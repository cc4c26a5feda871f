"""Property tests (Hypothesis) for exact invariants of tiling, flips/rotations, noise specs and ``-p`` values."""
import string

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from selfdenoise.core.augment import AUGMENT_MODES, flip_rotate
from selfdenoise.core.errors import InputError
from selfdenoise.core.noise import NOISE_KINDS, NoiseModel, parse_noise
from selfdenoise.core.params import parse_params, parse_value, parse_values
from selfdenoise.core.tiling import apply_tiled, tta_apply


def fast(n: int) -> settings:
    """Few examples, no deadline (2 shared cores) and no example database written into the checkout."""
    return settings(max_examples=n, deadline=None, database=None)


def pointwise(t):
    return 2 * t + torch.sin(t)


def random_tensor(shape, seed: int, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def generic(c: int, h: int, w: int):
    """A (C, H, W) tensor with all values distinct, so no flip/rotation maps it onto itself."""
    return torch.randperm(c * h * w, generator=torch.Generator().manual_seed(c * 1000 + h * 37 + w)).reshape(
        c, h, w).double()


seeds = st.integers(0, 2**31 - 1)
sides = st.integers(1, 33)


# -- tiling -------------------------------------------------------------------------------------------------

@fast(60)
@given(b=st.integers(1, 2), c=st.integers(1, 3), h=sides, w=sides, tile=st.integers(1, 40),
       overlap=st.integers(0, 16), multiple=st.sampled_from([1, 2, 3, 4, 8]), seed=seeds,
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_tiled_pointwise_equals_whole_pass(b, c, h, w, tile, overlap, multiple, seed, dtype):
    """For a pointwise fn, the blended tiles equal fn on the whole image, whatever the tile geometry."""
    x = random_tensor((b, c, h, w), seed, dtype)
    out = apply_tiled(pointwise, x, tile, overlap=overlap, multiple=multiple)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert out.shape == x.shape and out.dtype == x.dtype
    torch.testing.assert_close(out, pointwise(x), rtol=tol, atol=tol)


@fast(60)
@given(c=st.integers(1, 2), h=sides, w=sides, tile=st.integers(1, 40), overlap=st.integers(0, 16),
       multiple=st.sampled_from([1, 2, 3, 4, 8]), seed=seeds)
def test_tiled_local_mean_is_exact_away_from_inner_tile_borders(c, h, w, tile, overlap, multiple, seed):
    """For a 3x3 mean (borders: mean of the pixels present), the tiled result equals the whole pass at every
    pixel that lies off the inner borders of all tiles covering it, and everywhere it lies within the min/max
    of the pixel's 3x3 image neighbourhood (each tile's value there is such a mean, and blending is convex).
    The tiles cover the image, and each side is a multiple of ``multiple`` (at most the rounded ``tile``) or
    the whole image side."""
    data = random_tensor((1, c, h, w), seed)
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
    x = torch.cat([data, rows[None, None], cols[None, None]], 1)  # tiles carry their own coordinates
    tiles = []

    def mean3(t):
        tiles.append((int(t[0, c, 0, 0]), int(t[0, c + 1, 0, 0]), t.shape[-2], t.shape[-1]))
        return F.avg_pool2d(t, 3, 1, 1, count_include_pad=False)

    out = apply_tiled(mean3, x, tile, overlap=overlap, multiple=multiple)[:, :c]
    whole = F.avg_pool2d(data, 3, 1, 1, count_include_pad=False)

    side = max(multiple, tile // multiple * multiple)
    covered = torch.zeros(h, w, dtype=torch.int64)
    border = torch.zeros(h, w, dtype=torch.bool)
    for y, x0, th, tw in tiles:
        assert th == h or (th <= side and th % multiple == 0)
        assert tw == w or (tw <= side and tw % multiple == 0)
        covered[y:y + th, x0:x0 + tw] += 1
        if y > 0:
            border[y, x0:x0 + tw] = True
        if y + th < h:
            border[y + th - 1, x0:x0 + tw] = True
        if x0 > 0:
            border[y:y + th, x0] = True
        if x0 + tw < w:
            border[y:y + th, x0 + tw - 1] = True
    assert (covered > 0).all()
    inner = ~border
    torch.testing.assert_close(out[..., inner], whole[..., inner], rtol=1e-12, atol=1e-12)
    lo = -F.max_pool2d(-data, 3, 1, 1)
    hi = F.max_pool2d(data, 3, 1, 1)
    assert (out >= lo - 1e-12).all() and (out <= hi + 1e-12).all()


# -- flips and rotations ------------------------------------------------------------------------------------

def inverse_flip_rotate(y, k: int):
    """Undo ``flip_rotate(., k)``: un-mirror if ``k >= 4``, then ``k % 4`` quarter turns back."""
    y = y.flip(-1) if k >= 4 else y
    return torch.rot90(y, -(k % 4), (-2, -1))


@fast(80)
@given(c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), k=st.integers(0, 7), seed=seeds)
def test_flip_rotate_then_inverse_is_identity(c, h, w, k, seed):
    """flip_rotate(x, k) followed by its inverse gives x back exactly, square or not."""
    x = random_tensor((c, h, w), seed)
    y = flip_rotate(x, k)
    assert y.shape == ((c, w, h) if k % 2 else (c, h, w))
    assert torch.equal(inverse_flip_rotate(y, k), x)


@fast(40)
@given(c=st.integers(1, 2), h=st.integers(2, 7), w=st.integers(2, 7))
def test_dihedral_modes_are_eight_distinct_transforms(c, h, w):
    """The 'dihedral' setting lists modes 0..7, and on an input without symmetry they give 8 different results."""
    modes = AUGMENT_MODES["dihedral"]
    assert sorted(modes) == list(range(8))
    x = generic(c, h, w)
    outs = [flip_rotate(x, k) for k in modes]
    for i in range(8):
        for j in range(i):
            assert not (outs[i].shape == outs[j].shape and torch.equal(outs[i], outs[j])), (modes[i], modes[j])


@fast(40)
@given(c=st.integers(1, 2), h=st.integers(2, 7), w=st.integers(2, 7))
def test_flips_modes_are_the_four_mirrors(c, h, w):
    """The 'flips' setting keeps the axes: its modes are exactly identity, left-right, up-down and both mirrors."""
    x = generic(c, h, w)
    mirrors = [x, x.flip(-1), x.flip(-2), x.flip(-2, -1)]
    matched = []
    for k in AUGMENT_MODES["flips"]:
        y = flip_rotate(x, k)
        assert y.shape == x.shape
        matched.append(next(i for i, m in enumerate(mirrors) if torch.equal(y, m)))
    assert sorted(matched) == [0, 1, 2, 3]


tta_shapes = dict(b=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
                  n=st.integers(1, 10), modes=st.sampled_from(sorted(AUGMENT_MODES.values())), seed=seeds)


@fast(60)
@given(**tta_shapes)
def test_tta_of_identity_and_pointwise_models(b, c, h, w, n, modes, seed):
    """Test-time augmentation of the identity model returns x, and of a pointwise model returns model(x), for every
    n (n past the number of modes uses them all) and every augment setting; non-square images included."""
    x = random_tensor((b, c, h, w), seed)
    torch.testing.assert_close(tta_apply(lambda t: t, x, n, modes), x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(tta_apply(pointwise, x, n, modes), pointwise(x), rtol=1e-12, atol=1e-12)


@fast(40)
@given(**tta_shapes)
def test_tta_feeds_the_model_flip_rotate_views(b, c, h, w, n, modes, seed):
    """tta_apply calls the model once per mode in modes[:n], on exactly flip_rotate(x[i], k) of each image."""
    x = random_tensor((b, c, h, w), seed)
    seen = []

    def model(t):
        seen.append(t.clone())
        return t

    tta_apply(model, x, n, modes)
    assert len(seen) == len(modes[:n])
    for t, k in zip(seen, modes[:n]):
        assert torch.equal(t, torch.stack([flip_rotate(img, k) for img in x]))


# -- noise specs --------------------------------------------------------------------------------------------

ALIASES = {"gauss": ["gauss", "gaussian", "awgn"], "poisson": ["poisson", "shot"]}
PROBABILITY_KINDS = {"bernoulli", "impulse", "text"}


def number_texts(long: bool, hi: float):
    """Numbers in [0, hi] as a user may type them. ``long=False``: at most 6 significant digits (what the
    canonical spec prints), in several spellings ('5', '5.', '.5', '007', '2.5e-03', '1E+06'); ``long=True``:
    any double, written in full."""
    if long:
        values = st.floats(0, hi)
        formats = st.sampled_from([repr, "{:.17g}".format, "{:.12e}".format, "{:.10f}".format])
    else:
        exponents = st.integers(-12, -6) if hi <= 1 else st.integers(-9, 0)
        values = st.builds(lambda m, e: m * 10.0**e, st.integers(0, 999999), exponents) | st.just(hi)
        formats = st.sampled_from(["{:g}".format, "{:.3g}".format, "{:.5e}".format, "{:.5E}".format])

    @st.composite
    def text(draw):
        s = draw(formats)(draw(values))
        if not long:
            s = draw(st.sampled_from([s, s + "." if s.isdigit() else s, s.lstrip("0") or s, "0" + s]))
        return s

    return text()


@st.composite
def noise_specs(draw, long: bool):
    """A valid spec: kind (or an alias), then a value or a LOW-HIGH range in the kind's domain."""
    kind = draw(st.sampled_from(NOISE_KINDS))
    name = draw(st.sampled_from(ALIASES.get(kind, [kind])))
    numbers = number_texts(long, 1.0 if kind in PROBABILITY_KINDS else 1e6)
    if kind == "poisson":
        numbers = numbers.filter(lambda s: float(s) > 0)
    nums = draw(st.lists(numbers, min_size=1, max_size=2))
    return f"{name}:{'-'.join(sorted(nums, key=float))}"


@st.composite
def reformatted(draw, spec: str):
    """``spec`` with random letter case and whitespace inserted anywhere."""
    out = []
    for ch in spec:
        out.append(draw(st.sampled_from(["", " ", "\t", "  ", "\n"])))
        out.append(ch.upper() if draw(st.booleans()) else ch)
    out.append(draw(st.sampled_from(["", " ", "\t\n"])))
    return "".join(out)


@fast(150)
@given(spec=noise_specs(long=True))
@example(spec="gauss:1.0000001-1.0000002")
def test_noise_canonical_spec_is_a_fixed_point(spec):
    """Parsing the canonical spec gives the same canonical spec."""
    canonical = parse_noise(spec).spec
    assert parse_noise(canonical).spec == canonical


@fast(150)
@given(spec=noise_specs(long=False) | noise_specs(long=True))
def test_noise_spec_round_trips_exactly(spec):
    """The canonical spec parses back to the same model and the same canonical spec (``NoiseModel.spec``'s
    documented ``parse_noise(m.spec) == m``), for short numbers and for any double written in full."""
    model = parse_noise(spec)
    assert isinstance(model, NoiseModel) and model.kind in NOISE_KINDS
    assert parse_noise(model.spec) == model
    assert parse_noise(model.spec).spec == model.spec
    assert parse_noise(model) is model


@fast(100)
@given(data=st.data(), spec=noise_specs(long=True))
def test_noise_spec_ignores_case_and_whitespace(data, spec):
    """Changing letter case and adding whitespace anywhere gives the same model and canonical spec, which is
    lower case and has no whitespace; any alias gives the kind's own name."""
    model = parse_noise(spec)
    other = parse_noise(data.draw(reformatted(spec)))
    assert other == model and other.spec == model.spec
    assert model.spec == model.spec.lower() and "".join(model.spec.split()) == model.spec
    assert model.spec.split(":")[0] == model.kind and spec.split(":")[0] in ALIASES.get(model.kind, [model.kind])


@st.composite
def bad_noise_specs(draw):
    """Specs that break one rule of the grammar."""
    kind = draw(st.sampled_from(NOISE_KINDS))
    num = draw(number_texts(False, 1e6))
    junk = draw(st.text(alphabet=string.ascii_letters + "!?/_", min_size=1, max_size=5).filter(
        lambda s: s.lower() not in NOISE_KINDS and s.lower() not in ("gaussian", "awgn", "shot")))
    big = repr(draw(st.floats(1.0001, 1e6)))
    return draw(st.sampled_from([
        "", "   ", f"{junk}:{num}", f"{kind}", f"{kind}:", f"{kind}:-{num}", f"{kind}:{num}--{num}",
        f"{kind}:{junk}", f"{kind}:{num}{junk}", f"{kind}:{num}:{num}", f"{kind}:inf", f"{kind}:nan",
        f"{kind}:1e999", f"{kind}:{num}-", f"{kind}:-", f"{kind}:{num},{num}",
        f"{kind}:{float(num) + 1}-{num}",  # reversed range
        f"{draw(st.sampled_from(sorted(PROBABILITY_KINDS)))}:{big}",
        f"{draw(st.sampled_from(sorted(PROBABILITY_KINDS)))}:0.5-{big}",
        "poisson:0", "poisson:0-5", "shot:0.0",
    ]))


@fast(150)
@given(spec=bad_noise_specs())
def test_invalid_noise_specs_raise_input_error(spec):
    """A spec that breaks the grammar or a kind's domain raises InputError."""
    with pytest.raises(InputError):
        parse_noise(spec)


@fast(150)
@given(spec=st.text(max_size=20) | st.builds("{}:{}".format, st.sampled_from(NOISE_KINDS), st.text(max_size=12)))
def test_any_noise_spec_parses_or_raises_input_error(spec):
    """Any string gives a model whose canonical spec parses again, or raises InputError, never another error."""
    try:
        model = parse_noise(spec)
    except InputError:
        return
    parse_noise(model.spec)


# -- -p KEY=VALUE values ------------------------------------------------------------------------------------

WORDS = {"none", "true", "yes", "on", "false", "no", "off"}


def looks_like_number(s: str) -> bool:
    for kind in (int, float):
        try:
            kind(s)
            return True
        except ValueError:
            pass
    return False


def random_case(word: str):
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda up: "".join(ch.upper() if u else ch for ch, u in zip(word, up)))


numbers = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
plain_strings = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=","), max_size=12).filter(
    lambda s: s.strip() == s and s.lower() not in WORDS and not looks_like_number(s))
values = (numbers | st.booleans() | st.none() | st.tuples(numbers) | st.lists(numbers, min_size=2, max_size=5).map(tuple)
          | plain_strings)


@st.composite
def typed_values(draw):
    """(value, text a user would type for it)."""
    value = draw(values)

    def one(v):
        if v is None:
            return draw(random_case("none"))
        if isinstance(v, bool):
            return draw(random_case(draw(st.sampled_from(["true", "yes", "on"] if v else ["false", "no", "off"]))))
        return repr(v) if isinstance(v, float) else str(v)

    if isinstance(value, tuple):
        sep = draw(st.sampled_from([",", ", ", " , "]))
        text = sep.join(one(v) for v in value) + ("," if len(value) == 1 or draw(st.booleans()) else "")
    else:
        text = one(value)
    return value, text


def exact(value):
    """Comparison key: type and repr, so that 1 != 1.0 != True and -0.0 != 0.0."""
    if isinstance(value, tuple):
        return ("tuple", tuple(exact(v) for v in value))
    return (type(value).__name__, repr(value))


@fast(300)
@given(pair=typed_values())
def test_parse_value_round_trips(pair):
    """Typing an int, finite float, bool, None, tuple of numbers or a plain string and parsing it gives it back."""
    value, text = pair
    assert exact(parse_value(text)) == exact(value)


@fast(300)
@given(pairs=st.lists(typed_values().filter(lambda pair: pair[1] and ";" not in pair[1]), min_size=1, max_size=4))
def test_a_list_of_values_parses_back_each_value(pairs):
    """Values typed one after the other (semicolons between them when one is a tuple, else commas) parse back to
    the list."""
    values, texts = zip(*pairs)
    text = ";".join(texts) + ";" if any("," in t for t in texts) else ",".join(texts)
    assert [exact(v) for v in parse_values(text)] == [exact(v) for v in values]


keys = st.text(string.ascii_letters + string.digits + "-_. ", min_size=1, max_size=10).filter(lambda k: k.strip())


@fast(150)
@given(items=st.lists(st.tuples(keys, typed_values(), st.sampled_from(["", " ", "  "])), max_size=5))
def test_parse_params_round_trips(items):
    """``KEY=VALUE`` items give {key with '-' as '_': value}; spaces around key and value are ignored; a later
    item for the same key wins."""
    texts = [f"{pad}{key}{pad}={pad}{text}{pad}" for key, (_, text), pad in items]
    expected = {}
    for key, (value, _), _ in items:
        expected[key.strip().replace("-", "_")] = value
    parsed = parse_params(texts)
    assert list(parsed) == list(expected)
    assert {k: exact(v) for k, v in parsed.items()} == {k: exact(v) for k, v in expected.items()}


@fast(150)
@given(item=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="="), max_size=10)
       | st.builds("{}={}".format, st.sampled_from(["", " ", "\t"]), st.text(max_size=5)))
def test_malformed_params_raise_input_error(item):
    """An item without '=' or with a blank key raises InputError."""
    with pytest.raises(InputError):
        parse_params(["ok=1", item])
