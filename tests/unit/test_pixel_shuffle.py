"""Pixel-shuffle down-sampling: exact inverse, the sub-image layout, padding."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from selfdenoise.core.pixel_shuffle import pd_down, pd_up

shapes = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 41), st.integers(1, 41))


@settings(max_examples=60, deadline=None)
@given(shape=shapes, factor=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_pd_up_inverts_pd_down_exactly(shape, factor, seed):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    sub = pd_down(x, factor)
    b, c, h, w = shape
    assert sub.shape == (b * factor * factor, c, -(-h // factor), -(-w // factor))
    assert torch.equal(pd_up(sub, factor, (h, w)), x)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, factor=st.integers(2, 6), data=st.data())
def test_sub_image_holds_every_f_th_pixel(shape, factor, data):
    x = torch.rand(shape)
    b, c, h, w = shape
    i, j = data.draw(st.integers(0, factor - 1)), data.draw(st.integers(0, factor - 1))
    n = data.draw(st.integers(0, b - 1))
    sub = pd_down(x, factor)[n * factor * factor + i * factor + j]
    part = x[n, :, i::factor, j::factor]
    assert torch.equal(sub[:, : part.shape[1], : part.shape[2]], part)


def test_padding_reflects_at_the_bottom_right():
    x = torch.arange(7.0).view(1, 1, 1, 7).expand(1, 1, 5, 7).contiguous()
    sub = pd_down(x, 3)  # width 7 -> 9: columns 7, 8 reflect columns 5, 4
    assert sub.shape == (9, 1, 2, 3)
    assert sub[2, 0, 0].tolist() == [2.0, 5.0, 4.0]  # offset (0, 2): columns 2, 5, 8 -> 4


def test_factor_one_is_the_identity_and_bad_arguments_fail():
    x = torch.rand(1, 3, 5, 4)
    assert pd_down(x, 1) is x
    with pytest.raises(ValueError):
        pd_down(x, 0)
    with pytest.raises(ValueError):
        pd_down(x[0], 2)
    with pytest.raises(ValueError):
        pd_up(torch.rand(3, 3, 2, 2), 2, (4, 4))
