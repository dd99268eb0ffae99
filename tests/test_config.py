from __future__ import annotations

import math

import pytest

from fastv import FastVConfig


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, r"k=0 is out of range: k must be >= 1"),
        ({"k": -2}, r"k=-2 is out of range"),
        ({"ratio": 1.0}, r"ratio=1.0 is outside \[0, 1\)"),
        ({"ratio": -0.1}, r"ratio=-0.1 is outside \[0, 1\)"),
        ({"ratio": math.nan}, r"ratio=nan is outside \[0, 1\)"),
        ({"keep": -1}, r"keep=-1 must be a non-negative int"),
        ({"rank": "top"}, r"rank='top' is unknown; choose one of last_token, mean, random"),
        ({"budget": "per_frame"}, r"budget='per_frame' is unknown; choose 'global' .* or 'per_image'"),
        ({"seed": 1.5}, r"seed=1\.5 must be an int in \[0, 2\*\*64\)"),
        ({"seed": "0"}, r"seed='0' must be an int"),
        ({"seed": 2**64}, r"seed=18446744073709551616 must be an int in \[0, 2\*\*64\)"),
        ({"seed": -1}, r"seed=-1 must be an int"),
        ({"seed": True}, r"seed=True must be an int"),
    ],
)
def test_invalid_settings_name_the_field_and_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FastVConfig(**kwargs)


def test_k_must_be_an_int():
    with pytest.raises(TypeError, match="k must be an int"):
        FastVConfig(k=2.0)


@pytest.mark.parametrize(
    ("ratio", "n_img", "dropped"), [(0.5, 576, 288), (0.75, 576, 432), (0.29, 100, 29), (0.5, 5, 2), (0.0, 9, 0)]
)
def test_ratio_drops_floor_of_ratio_times_image_tokens(ratio, n_img, dropped):
    assert FastVConfig(ratio=ratio).n_dropped(n_img) == dropped


def test_keep_overrides_ratio_and_caps_at_the_image_count():
    config = FastVConfig(ratio=0.9, keep=64)
    assert config.n_dropped(576) == 512
    assert config.n_dropped(40) == 0
    assert config.describe() == "FastV(k=2, keep=64, rank=last_token)"


def test_budget_defaults_to_global_and_shows_when_per_image():
    assert FastVConfig().budget == "global"
    assert FastVConfig(budget="per_image").describe() == "FastV(k=2, ratio=0.5, rank=last_token, budget=per_image)"
