"""With the method off, lvu_ext answers exactly what transformers' own processor +
`model.generate` (and a direct forward pass) give for the same frames and prompt."""

import pytest
import torch
import transformers
from transformers import AutoProcessor

from conftest import FAMILIES, make_lm, make_request
from video_fixtures import sampled_frames_plainly

CONTEXT = "What happens in the video?\nA. left\nB. right\nAnswer with the option's letter from the given choices directly."
CLASSES = {"llava_onevision": "LlavaOnevisionForConditionalGeneration", "llava_next_video": "LlavaNextVideoForConditionalGeneration"}


def oracle_inputs(checkpoint, video_path, num_frames, text_suffix=""):
    processor = AutoProcessor.from_pretrained(checkpoint)
    frames = sampled_frames_plainly(video_path, num_frames)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": CONTEXT}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=prompt + text_suffix, videos=[frames], return_tensors="pt")
    return processor, prompt, inputs


def load_oracle_model(family, checkpoint):
    return getattr(transformers, CLASSES[family]).from_pretrained(checkpoint).eval()


def spy_generate(lm) -> list:
    """Record the ids lvu_ext's own `generate` call returns (the real call, observed)."""
    outputs, real = [], lm.model.generate

    def recording(*args, **kwargs):
        out = real(*args, **kwargs)
        outputs.append((kwargs["input_ids"].clone(), out.clone()))
        return out

    lm.model.generate = recording
    return outputs


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_token_for_token(family, tiny_checkpoints, sample_video):
    """The mirrored fixtures (real templates, real tokenizer behaviour: NeXT-Video's BOS,
    Qwen2's none): same prompt ids and same new ids as processor + generate."""
    ckpt = tiny_checkpoints[family]
    lm = make_lm(ckpt, num_frames=12, vision_batch=5)  # chunked vision tower must not change anything
    calls = spy_generate(lm)
    answer = lm.generate_until([make_request(lm, str(sample_video), CONTEXT, {"max_new_tokens": 24, "temperature": 0})])[0]

    processor, _, inputs = oracle_inputs(ckpt, sample_video, 12)
    model = load_oracle_model(family, ckpt)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    new_tokens = out[0, inputs["input_ids"].shape[1] :]
    assert new_tokens.numel() >= 20, "oracle stopped early; the comparison would be too weak"
    expected = processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
    assert answer == expected
    # token for token: lvu_ext's prompt and new ids are the oracle's
    (our_prompt, our_out), = calls
    assert our_prompt[0].tolist() == inputs["input_ids"][0].tolist()
    assert our_out[0, our_prompt.shape[1] :].tolist() == new_tokens.tolist()


@pytest.mark.parametrize("family", FAMILIES)
def test_loglikelihood_matches_forward_pass(family, tiny_checkpoints, sample_video):
    ckpt = tiny_checkpoints[family]
    lm = make_lm(ckpt, num_frames=8)
    continuation = " B. right"
    (logprob, greedy), = lm.loglikelihood(
        [make_request(lm, str(sample_video), CONTEXT, request_type="loglikelihood", continuation=continuation)]
    )

    processor, prompt, full = oracle_inputs(ckpt, sample_video, 8, text_suffix=continuation)
    _, _, ctx = oracle_inputs(ckpt, sample_video, 8)
    model = load_oracle_model(family, ckpt)
    with torch.inference_mode():
        logits = model(**full).logits[0].float()
    n_ctx = ctx["input_ids"].shape[1]
    targets = full["input_ids"][0, n_ctx:]
    logprobs = torch.log_softmax(logits[n_ctx - 1 : -1], dim=-1)
    expected = float(logprobs.gather(-1, targets[:, None]).sum())
    assert len(targets) >= 2
    assert logprob == pytest.approx(expected, abs=1e-4)
    assert greedy == bool((logits[n_ctx - 1 : -1].argmax(-1) == targets).all())
