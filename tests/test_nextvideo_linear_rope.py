"""LLaVA-NeXT-Video with its published linear RoPE scaling (factor 2.5): the method runs
composed with it (METHOD.md 1b), against transformers with the 1b frequencies patched in."""

import math

import numpy as np
import pytest
import torch
import transformers

from conftest import make_lm, make_request
from lmms_eval_plugin.models.lvu_ext import LvuExt
from test_matches_transformers import CONTEXT, oracle_inputs, spy_generate

FAMILY = "llava_next_video"


def rotary(model):
    return [m for m in model.modules() if "inv_freq" in m._buffers and hasattr(m, "attention_scaling")]


def sharpen_attention(model, gain=40.0):
    """Random init (std 0.02) leaves attention nearly uniform, so positions barely matter;
    scaling the language model's query/key projections (same in lvu_ext's and the oracle's
    model) makes the answer depend on the RoPE frequencies."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "language_model" in name and (".q_proj." in name or ".k_proj." in name):
                p.mul_(gain)
    return model


def closed_form_1b(config, L, s, alpha=1.0, beta=32.0):
    """METHOD.md 1b from the config's own numbers, float64: theta_i^c = b^(-2i/d) / f, ramp on r_i."""
    text = config.text_config
    d = text.hidden_size // text.num_attention_heads
    f = text.rope_parameters["factor"]
    i = np.arange(d // 2, dtype=np.float64)
    theta_c = text.rope_parameters["rope_theta"] ** (-2 * i / d) / f
    r = L * theta_c / (2 * np.pi)
    gamma = np.clip((r - alpha) / (beta - alpha), 0.0, 1.0)
    return torch.from_numpy((gamma + (1 - gamma) / s) * theta_c).float()


def test_fixture_carries_the_published_linear_scaling(tiny_checkpoints):
    config = transformers.AutoConfig.from_pretrained(tiny_checkpoints[FAMILY])
    assert config.text_config.rope_parameters["rope_type"] == "linear"
    assert config.text_config.rope_parameters["factor"] == 2.5


def test_default_model_args_load_and_answer(tiny_checkpoints, sample_video):
    lm = LvuExt(pretrained=str(tiny_checkpoints[FAMILY]), device="cpu")  # defaults: rope_ext=vcwe, pooling=progressive
    assert lm.rope_settings.variant == "vcwe" and lm.rope_settings.base == "checkpoint"
    calls = spy_generate(lm)
    answer = lm.generate_until([make_request(lm, str(sample_video), CONTEXT, {"max_new_tokens": 6, "temperature": 0})])[0]
    assert isinstance(answer, str)
    (prompt, out), = calls
    assert prompt[0, 0].item() == lm.tokenizer.bos_token_id and out.shape[1] > prompt.shape[1]
    assert lm.last_video.record["frames_sampled"] == 32


def test_vcwe_equals_transformers_with_1b_frequencies(tiny_checkpoints, sample_video):
    s, window = 3.0, 512
    ckpt = tiny_checkpoints[FAMILY]
    lm = make_lm(ckpt, num_frames=8, rope_ext="vcwe", rope_factor=s, visual_window=window)
    sharpen_attention(lm.model)
    calls = spy_generate(lm)
    answer = lm.generate_until([make_request(lm, str(sample_video), CONTEXT, {"max_new_tokens": 20, "temperature": 0})])[0]
    record = lm.last_video.record
    assert record["rope_applied"] and record["s"] == s and record["rope_base"] == "checkpoint"

    processor, _, inputs = oracle_inputs(ckpt, sample_video, 8)
    model = sharpen_attention(transformers.LlavaNextVideoForConditionalGeneration.from_pretrained(ckpt).eval())
    stock = [m.inv_freq.clone() for m in rotary(model)]
    patched = closed_form_1b(model.config, window, s)
    assert not torch.allclose(patched, stock[0])  # the comparison is not stock vs stock
    for m in rotary(model):
        m.inv_freq = patched.clone()
        m.attention_scaling = 0.1 * math.log(s) + 1.0
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    new_tokens = out[0, inputs["input_ids"].shape[1] :]
    (our_prompt, our_out), = calls
    assert our_prompt[0].tolist() == inputs["input_ids"][0].tolist()
    assert our_out[0, our_prompt.shape[1] :].tolist() == new_tokens.tolist()
    assert answer == processor.tokenizer.decode(new_tokens, skip_special_tokens=True)


def oracle_logprob(model, inputs_full, n_ctx, inv_freq, scaling):
    for m in rotary(model):
        m.inv_freq = inv_freq.clone()
        m.attention_scaling = scaling
    with torch.inference_mode():
        logits = model(**inputs_full).logits[0].float()
    targets = inputs_full["input_ids"][0, n_ctx:]
    return float(torch.log_softmax(logits[n_ctx - 1 : -1], -1).gather(-1, targets[:, None]).sum())


def test_vcwe_loglikelihood_equals_the_1b_forward_pass(tiny_checkpoints, sample_video):
    """Greedy tokens of a random model barely react to RoPE; log-probabilities do. They match
    the 1b frequencies and not the unscaled-base ones (the test can tell the two apart)."""
    s, window, continuation = 3.0, 512, " B. right"
    ckpt = tiny_checkpoints[FAMILY]
    lm = make_lm(ckpt, num_frames=8, rope_ext="vcwe", rope_factor=s, visual_window=window)
    sharpen_attention(lm.model)
    (ours, _), = lm.loglikelihood(
        [make_request(lm, str(sample_video), CONTEXT, request_type="loglikelihood", continuation=continuation)]
    )
    _, _, full = oracle_inputs(ckpt, sample_video, 8, text_suffix=continuation)
    _, _, ctx = oracle_inputs(ckpt, sample_video, 8)
    model = sharpen_attention(transformers.LlavaNextVideoForConditionalGeneration.from_pretrained(ckpt).eval())
    n_ctx, scaling = ctx["input_ids"].shape[1], 0.1 * math.log(s) + 1.0
    expected = oracle_logprob(model, full, n_ctx, closed_form_1b(model.config, window, s), scaling)
    assert ours == pytest.approx(expected, abs=1e-4)
    unscaled_cfg = model.config  # the same formula without the checkpoint's factor: rope_base=unscaled
    unscaled_cfg.text_config.rope_parameters = dict(unscaled_cfg.text_config.rope_parameters, factor=1.0)
    wrong = oracle_logprob(model, full, n_ctx, closed_form_1b(unscaled_cfg, window, s), scaling)
    assert abs(wrong - expected) > 100 * abs(ours - expected) + 1e-3


def test_short_request_after_long_one_sees_the_checkpoints_frequencies(tiny_checkpoints, sample_video):
    ckpt = tiny_checkpoints[FAMILY]
    fresh = rotary(transformers.LlavaNextVideoForConditionalGeneration.from_pretrained(ckpt))[0].inv_freq.clone()
    lm = make_lm(ckpt, rope_ext="vcwe", visual_window=500)  # 144 tokens/frame: 8 frames -> s = 2.3, 2 frames -> s < 1
    seen = []
    for m in rotary(lm.model):
        m.register_forward_pre_hook(lambda mod, args: seen.append((mod.inv_freq.clone(), mod.attention_scaling)))

    def ask(frames, doc_id):
        seen.clear()
        request = make_request(lm, str(sample_video), CONTEXT, {"max_new_tokens": 3, "temperature": 0}, doc_id=doc_id,
                               metadata={"lvu_num_frames": frames})
        lm.generate_until([request])
        return lm.last_video.record

    long = ask(8, 0)
    assert long["rope_applied"] and long["s"] == pytest.approx(8 * 144 / 500)
    assert seen and all(not torch.equal(f, fresh) for f, _ in seen)
    short = ask(2, 1)
    assert not short["rope_applied"] and short["s"] < 1
    # every forward of the short request ran on transformers' own linear frequencies, bit for bit
    assert seen and all(torch.equal(f, fresh) and a == 1.0 for f, a in seen)
