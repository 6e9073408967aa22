"""VCWE frequencies against the closed form of METHOD.md, evaluated independently in numpy float64."""

import math

import numpy as np
import pytest
import torch
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding

from lmms_eval_plugin.method.rope_scaling import (
    FAMILY_VISUAL_WINDOW,
    RopeSettings,
    check_checkpoint_rope,
    compute_rope_override,
    scale_factor,
    vcwe_inv_freq,
)


def _config(head_dim, theta, **kw):
    return Qwen2Config(
        hidden_size=head_dim * 2,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_hidden_layers=1,
        intermediate_size=8,
        vocab_size=16,
        max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": theta},
        **kw,
    )


def _stock(head_dim, theta):
    return Qwen2RotaryEmbedding(_config(head_dim, theta)).inv_freq


def _oracle(theta_base, d, L, s, alpha, beta):
    """The paper's formula, written from METHOD.md in float64 numpy."""
    i = np.arange(d // 2, dtype=np.float64)
    theta = theta_base ** (-2 * i / d)
    lam = 2 * np.pi / theta
    r = L / lam
    gamma = np.where(r > beta, 1.0, np.where(r < alpha, 0.0, (r - alpha) / (beta - alpha)))
    return (gamma + (1 - gamma) / s) * theta, r


CASES = [
    (16, 10000.0, 64, 2.0),
    (32, 10000.0, 6272, 8.0),
    (32, 1e6, 4608, 3.5),
    (128, 1e6, 6272, 4.0),
    (64, 1e6, 512, 6.0),
]


@pytest.mark.parametrize("d,base,L,s", CASES)
def test_vcwe_matches_closed_form(d, base, L, s):
    alpha, beta = 1.0, 32.0
    got = vcwe_inv_freq(base, d, L, s, alpha, beta)
    stock = _stock(d, base)
    expected, r = _oracle(base, d, L, s, alpha, beta)
    assert got.dtype == torch.float32 and got.shape == stock.shape
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=2e-6, atol=0)

    low, high, band = r < alpha, r > beta, (r >= alpha) & (r <= beta)
    # Untouched high-frequency dims stay bit-identical to the model's own inv_freq.
    assert torch.equal(got[torch.from_numpy(high)], stock[torch.from_numpy(high)])
    # Fully interpolated low-frequency dims are exactly theta / s.
    assert torch.equal(got[torch.from_numpy(low)], (stock.double() / s).float()[torch.from_numpy(low)])
    # In the band, the recovered gamma is linear in r (not in the dimension index).
    if band.any():
        ratio = got.double().numpy()[band] / stock.double().numpy()[band]
        gamma = (ratio - 1 / s) / (1 - 1 / s)
        np.testing.assert_allclose(gamma, (r[band] - alpha) / (beta - alpha), atol=2e-6)


def test_cases_cover_all_three_regions():
    _, r = _oracle(1e6, 128, 6272, 4.0, 1.0, 32.0)
    assert (r < 1).any() and (r > 32).any() and ((r >= 1) & (r <= 32)).any()


def test_custom_alpha_beta():
    got = vcwe_inv_freq(10000.0, 32, 2048, 4.0, 0.5, 8.0)
    expected, _ = _oracle(10000.0, 32, 2048, 4.0, 0.5, 8.0)
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=2e-6)


@pytest.mark.parametrize("s", [0.25, 1.0])
@pytest.mark.parametrize("d,base", [(16, 10000.0), (128, 1e6)])
def test_s_at_most_one_is_stock_bit_for_bit(d, base, s):
    assert torch.equal(vcwe_inv_freq(base, d, 6272, s), _stock(d, base))


def test_compute_override_vcwe_and_attention_scale():
    cfg = _config(32, 1e6)
    settings = RopeSettings("vcwe", 6272)
    ov = compute_rope_override(cfg, settings, 6272 * 3)
    assert ov.s == pytest.approx(3.0)
    assert ov.attention_scaling == pytest.approx(0.1 * math.log(3.0) + 1)
    assert torch.equal(ov.inv_freq, vcwe_inv_freq(1e6, 32, 6272, 3.0))
    off = compute_rope_override(cfg, RopeSettings("vcwe", 6272, attn_scale="none"), 6272 * 3)
    assert off.attention_scaling == 1.0 and torch.equal(off.inv_freq, ov.inv_freq)


def test_compute_override_yarn_attention_scale():
    cfg = _config(32, 1e6)
    on = compute_rope_override(cfg, RopeSettings("yarn", 64, factor=5.0), 10)
    off = compute_rope_override(cfg, RopeSettings("yarn", 64, factor=5.0, attn_scale="none"), 10)
    assert on.attention_scaling == pytest.approx(0.1 * math.log(5.0) + 1)
    assert off.attention_scaling == 1.0
    assert torch.equal(on.inv_freq, off.inv_freq)


@pytest.mark.parametrize("variant", ["none", "vcwe", "yarn", "yarn_language"])
def test_no_change_when_short_or_none(variant):
    cfg = _config(32, 1e6)
    short = compute_rope_override(cfg, RopeSettings(variant, 6272), 6272)
    assert short.inv_freq is None and short.attention_scaling == 1.0
    if variant == "none":
        assert compute_rope_override(cfg, RopeSettings(variant, 6272), 60000).inv_freq is None


def test_scale_factor_auto_and_fixed():
    assert scale_factor(RopeSettings("vcwe", 4608), 4608 * 2) == 2.0
    assert scale_factor(RopeSettings("vcwe", 4608, factor=3.0), 10) == 3.0
    assert scale_factor(RopeSettings("vcwe", 4608, factor="2.5"), 10) == 2.5
    assert FAMILY_VISUAL_WINDOW == {"llava_onevision": 6272, "llava_next_video": 4608}


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        ({"variant": "ntk", "visual_window": 10}, "rope_ext"),
        ({"variant": "vcwe", "visual_window": 0}, "visual_window"),
        ({"variant": "vcwe", "visual_window": 10, "factor": 0}, "rope_factor"),
        ({"variant": "vcwe", "visual_window": 10, "factor": -2.0}, "rope_factor"),
        ({"variant": "vcwe", "visual_window": 10, "factor": "big"}, "rope_factor"),
        ({"variant": "vcwe", "visual_window": 10, "alpha": -1.0}, "rope_alpha"),
        ({"variant": "vcwe", "visual_window": 10, "alpha": 32.0, "beta": 32.0}, "rope_beta"),
        ({"variant": "vcwe", "visual_window": 10, "attn_scale": "mscale"}, "rope_attn_scale"),
    ],
)
def test_validation_names_the_arg(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        RopeSettings(**kwargs)


def test_refuses_checkpoint_with_scaled_rope():
    cfg = _config(32, 1e6)
    cfg.rope_parameters = {"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0, "original_max_position_embeddings": 1024}
    with pytest.raises(ValueError, match=r"rope_type=yarn.*rope_ext=none"):
        check_checkpoint_rope(cfg, RopeSettings("vcwe", 1024))
    check_checkpoint_rope(cfg, RopeSettings("none", 1024))  # plain extrapolation is fine
    check_checkpoint_rope(_config(32, 1e6), RopeSettings("vcwe", 1024))
