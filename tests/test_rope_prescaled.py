"""METHOD.md 1b: the extension on checkpoints whose RoPE is already scaled.

Oracles: the closed form of 1b evaluated here in numpy float64, and transformers' own
rotary modules / RoPE init functions on configs carrying the checkpoint's scaling."""

import copy
import math

import numpy as np
import pytest
import torch
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

from lmms_eval_plugin.method.rope_scaling import RopeSettings, check_checkpoint_rope, compute_rope_override

HEAD_DIM, THETA, F = 128, 10000.0, 2.5  # LLaVA-NeXT-Video-7B: Llama head_dim 128, theta 1e4, linear 2.5


def llama(rope):
    return LlamaConfig(hidden_size=HEAD_DIM * 2, num_attention_heads=2, num_key_value_heads=2, num_hidden_layers=1,
                       intermediate_size=8, vocab_size=16, max_position_embeddings=4096,
                       rope_parameters={"rope_theta": THETA, **rope})


LINEAR = {"rope_type": "linear", "factor": F}


def closed_form(L, s, alpha=1.0, beta=32.0, f=None):
    """theta'_i of METHOD.md 1b (f=None: section 1 on the unscaled theta_i), float64."""
    i = np.arange(HEAD_DIM // 2, dtype=np.float64)
    theta = THETA ** (-2 * i / HEAD_DIM) / (f or 1.0)
    r = L / (2 * np.pi / theta)
    gamma = np.clip((r - alpha) / (beta - alpha), 0.0, 1.0)
    return (gamma + (1 - gamma) / s) * theta


def stock(rope):
    return LlamaRotaryEmbedding(llama(rope)).inv_freq


@pytest.mark.parametrize("s,L", [(3.0, 4608), (1.7, 512), (8.0, 60000)])
def test_vcwe_on_linear_checkpoint_is_the_1b_formula(s, L):
    override = compute_rope_override(llama(LINEAR), RopeSettings("vcwe", L, factor=s), 0)
    np.testing.assert_allclose(override.inv_freq.double().numpy(), closed_form(L, s, f=F), rtol=1e-6)
    assert override.attention_scaling == pytest.approx(0.1 * math.log(s) + 1)
    # dims the ramp leaves alone (gamma = 1) are transformers' linear frequencies, bit for bit
    theta_c = closed_form(L, 1.0 + 1e-12, f=F)
    untouched = torch.from_numpy(L * theta_c / (2 * np.pi) > 32.0)
    assert untouched.any() and torch.equal(override.inv_freq[untouched], stock(LINEAR)[untouched])
    # and it is not the unscaled-base variant
    assert not np.allclose(override.inv_freq.double().numpy(), closed_form(L, s), rtol=1e-3)


@pytest.mark.parametrize("variant", ["vcwe", "yarn", "yarn_language", "none"])
def test_s_at_most_one_keeps_the_checkpoint(variant):
    cfg = llama(LINEAR)
    settings = RopeSettings(variant, 4608, base="unscaled" if variant.startswith("yarn") else "checkpoint")
    if variant.startswith("yarn"):  # with base=unscaled, s <= 1 is the unscaled theta_i (documented)
        override = compute_rope_override(cfg, settings, 100)
        assert torch.equal(override.inv_freq, stock({"rope_type": "default"}))
        return
    override = compute_rope_override(cfg, settings, 4608)  # s = 1
    assert override.inv_freq is None  # nothing swapped: transformers' own linear frequencies stay


def test_unscaled_base_drops_the_linear_factor():
    cfg = llama(LINEAR)
    big = compute_rope_override(cfg, RopeSettings("vcwe", 4608, factor=3.0, base="unscaled"), 0)
    np.testing.assert_allclose(big.inv_freq.double().numpy(), closed_form(4608, 3.0), rtol=1e-6)
    small = compute_rope_override(cfg, RopeSettings("vcwe", 4608, base="unscaled"), 10)  # s <= 1
    assert torch.equal(small.inv_freq, stock({"rope_type": "default"}))  # the unscaled theta_i, not the checkpoint's
    assert not torch.equal(small.inv_freq, stock(LINEAR))
    off = compute_rope_override(cfg, RopeSettings("none", 4608, base="unscaled"), 10**6)
    assert torch.equal(off.inv_freq, stock({"rope_type": "default"})) and off.attention_scaling == 1.0


def test_yarn_with_unscaled_base_is_transformers_yarn():
    s, L = 3.0, 4608
    override = compute_rope_override(llama(LINEAR), RopeSettings("yarn", L, factor=s, base="unscaled"), 0)
    cfg = copy.deepcopy(llama({"rope_type": "yarn", "factor": s, "original_max_position_embeddings": L,
                               "beta_fast": 32.0, "beta_slow": 1.0}))
    expected, scaling = ROPE_INIT_FUNCTIONS["yarn"](cfg)
    assert torch.equal(override.inv_freq, expected.float()) and override.attention_scaling == pytest.approx(scaling)


@pytest.mark.parametrize("variant", ["yarn", "yarn_language"])
def test_yarn_on_linear_checkpoint_is_refused_naming_what_works(variant):
    with pytest.raises(ValueError) as err:
        check_checkpoint_rope(llama(LINEAR), RopeSettings(variant, 4608))
    message = str(err.value)
    assert "factor 2.5" in message and "rope_ext=vcwe" in message and "rope_ext=none" in message
    assert f"rope_ext={variant},rope_base=unscaled" in message


@pytest.mark.parametrize("rope", [
    {"rope_type": "dynamic", "factor": 2.0},
    {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024},
    {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
     "original_max_position_embeddings": 1024},
])
def test_other_scaled_types_are_refused(rope):
    cfg = llama(rope)
    for settings in (RopeSettings("vcwe", 4608), RopeSettings("none", 4608, base="unscaled")):
        with pytest.raises(ValueError, match=rf"rope_type={rope['rope_type']}.*rope_ext=none,rope_base=checkpoint"):
            check_checkpoint_rope(cfg, settings)
    check_checkpoint_rope(cfg, RopeSettings("none", 4608))  # transformers' own, untouched


def test_rope_base_is_validated():
    with pytest.raises(ValueError, match="rope_base"):
        RopeSettings("vcwe", 10, base="original")
