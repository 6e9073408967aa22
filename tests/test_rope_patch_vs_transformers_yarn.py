"""rope_override on a stock model == the same checkpoint loaded by transformers with its own YaRN."""

import copy

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from lmms_eval_plugin.method.rope_scaling import RopeSettings, compute_rope_override
from lmms_eval_plugin.patches.rope_window import rope_override, rotary_modules

L_VISUAL = 64  # small "visual window" so a few hundred tokens give s > 1
S = 4.0
SEQ = 300


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    cfg = Qwen2Config(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=128,
        max_position_embeddings=2048,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    )
    path = tmp_path_factory.mktemp("qwen2_tiny")
    Qwen2ForCausalLM(cfg).save_pretrained(path)
    return path


def _load(path, config=None):
    kw = {"config": config} if config is not None else {}
    return Qwen2ForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager", **kw).eval()


def _yarn_config(path, original):
    cfg = copy.deepcopy(Qwen2Config.from_pretrained(path))
    cfg.rope_parameters = {
        "rope_type": "yarn",
        "rope_theta": cfg.rope_parameters["rope_theta"],
        "factor": S,
        "original_max_position_embeddings": original,
    }
    return cfg


@pytest.fixture(scope="module")
def stock(checkpoint):
    return _load(checkpoint)


@pytest.fixture(scope="module")
def input_ids():
    return torch.randint(0, 128, (1, SEQ), generator=torch.Generator().manual_seed(1))


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize(
    "variant,settings_kw,original",
    [
        ("yarn", {"factor": S}, L_VISUAL),
        ("yarn", {"factor": "auto"}, L_VISUAL),  # s = n_visual_tokens / L_VISUAL = 4
        ("yarn_language", {"factor": S}, 2048),
    ],
)
def test_override_equals_transformers_yarn(checkpoint, stock, input_ids, variant, settings_kw, original):
    reference = _load(checkpoint, _yarn_config(checkpoint, original))
    ref_rot, stock_rot = rotary_modules(reference), rotary_modules(stock)
    assert ref_rot and ref_rot[0].rope_type == "yarn"
    assert not torch.equal(ref_rot[0].inv_freq, stock_rot[0].inv_freq)  # transformers really scaled

    override = compute_rope_override(stock.config, RopeSettings(variant, L_VISUAL, **settings_kw), int(S * L_VISUAL))
    assert override.s == S
    with rope_override(stock, override):
        ours = _logits(stock, input_ids)
    expected = _logits(reference, input_ids)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)
    assert not torch.allclose(_logits(stock, input_ids), expected, atol=1e-3)  # the override mattered


def test_restores_exactly_after_exit_and_exception(stock, input_ids):
    before = _logits(stock, input_ids)
    originals = [(m.inv_freq, m.attention_scaling) for m in rotary_modules(stock)]
    override = compute_rope_override(stock.config, RopeSettings("vcwe", L_VISUAL), 4 * L_VISUAL)

    with rope_override(stock, override):
        inside = _logits(stock, input_ids)
    assert not torch.equal(inside, before)
    assert torch.equal(_logits(stock, input_ids), before)

    with pytest.raises(RuntimeError, match="boom"), rope_override(stock, override):
        assert rotary_modules(stock)[0].attention_scaling == override.attention_scaling
        raise RuntimeError("boom")
    assert torch.equal(_logits(stock, input_ids), before)
    for m, (inv_freq, scaling) in zip(rotary_modules(stock), originals):
        assert m.inv_freq is inv_freq and m.attention_scaling == scaling


def test_noop_override_changes_nothing(stock, input_ids):
    before = _logits(stock, input_ids)
    override = compute_rope_override(stock.config, RopeSettings("vcwe", L_VISUAL), L_VISUAL)  # s = 1
    assert override.inv_freq is None
    with rope_override(stock, override):
        assert torch.equal(_logits(stock, input_ids), before)
