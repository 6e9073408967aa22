"""The prompt lvu_ext builds is the hub template's rendering, tokenized the way
transformers' processor tokenizes it (BOS for NeXT-Video, none for OneVision), and
`system_prompt` reproduces the LLaVA-NeXT `qwen_1_5` conversation."""

import numpy as np
import pytest
from transformers import AutoProcessor

from conftest import make_lm
from lmms_eval_plugin.engine.prompting import build_prompt, prompt_ids

QUESTION = "What colour is the moving square?\n(A) red\n(B) green\n(C) blue\n(D) yellow"
# The renderings of the published templates, as the issue and transformers' own
# integration test (tests/models/llava_next_video: "USER: <video>\nWhy is this video funny? ASSISTANT:") spell them.
HUB_RENDERING = {
    "llava_onevision": f"<|im_start|>user\n<video>\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n",
    "llava_next_video": f"USER: <video>\n{QUESTION} ASSISTANT:",
}
# LLaVA-NeXT conv_templates["qwen_1_5"] (system "You are a helpful assistant.", ChatML separators):
# what lmms-eval's built-in llava_onevision model and the paper's harness sent.
QWEN_1_5 = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    f"<|im_start|>user\n<video>\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
)


@pytest.mark.parametrize("family", ["llava_onevision", "llava_next_video"])
def test_prompt_is_the_hub_rendering(family, tiny_checkpoints):
    processor = AutoProcessor.from_pretrained(tiny_checkpoints[family])
    assert build_prompt(processor, QUESTION) == HUB_RENDERING[family]


@pytest.mark.parametrize("family,bos", [("llava_onevision", None), ("llava_next_video", 1)])
def test_prompt_ids_equal_the_processors(family, bos, tiny_checkpoints):
    """lvu_ext's ids (video placeholder expanded) == processor(text=prompt, videos=...)."""
    lm = make_lm(tiny_checkpoints[family], num_frames=4)
    prompt = build_prompt(lm.processor, QUESTION)
    frames = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    expected = lm.processor(text=prompt, videos=[frames], return_tensors="pt")["input_ids"][0].tolist()
    n_visual = expected.count(lm.model.config.video_token_id)
    ours = lm._input_ids(prompt, n_visual)
    assert ours == expected
    if bos is None:  # Qwen2: no BOS at all
        assert lm.tokenizer.bos_token is None and ours[0] == lm.tokenizer.convert_tokens_to_ids("<|im_start|>")
    else:  # Llama/Vicuna: BOS <s> first, exactly once
        assert ours[0] == bos == lm.tokenizer.bos_token_id and ours.count(bos) == 1


def test_prompt_already_starting_with_bos_gets_no_second_one(tiny_checkpoints):
    """The processor's rule, not a per-family flag: a rendered prompt that starts with BOS
    is tokenized without special tokens (transformers' apply_chat_template(tokenize=True))."""
    processor = AutoProcessor.from_pretrained(tiny_checkpoints["llava_next_video"])
    echo = "{{ messages[0]['content'][0]['text'] }}"  # a template that writes its text (and BOS) as is
    for text in ("<s>USER: " + QUESTION + " ASSISTANT:", "USER: " + QUESTION + " ASSISTANT:"):
        messages = [{"role": "user", "content": [{"type": "text", "text": text}]}]
        expected = processor.apply_chat_template(
            messages, chat_template=echo, tokenize=True, return_dict=True, return_tensors="pt"
        )["input_ids"][0].tolist()
        ours = prompt_ids(processor.tokenizer, text)
        assert ours == expected and ours[0] == 1 and ours.count(1) == 1


def test_system_prompt_reproduces_qwen_1_5(tiny_checkpoints):
    lm = make_lm(tiny_checkpoints["llava_onevision"], system_prompt="You are a helpful assistant.")
    assert lm.args.system_prompt == "You are a helpful assistant."
    assert build_prompt(lm.processor, QUESTION, lm.args.system_prompt) == QWEN_1_5
    # default: the checkpoint's own template, no system turn
    assert make_lm(tiny_checkpoints["llava_onevision"]).args.system_prompt is None


def test_system_prompt_on_nextvideo_uses_its_template(tiny_checkpoints):
    processor = AutoProcessor.from_pretrained(tiny_checkpoints["llava_next_video"])
    # the Vicuna template renders a system message as its text before "USER:"
    assert build_prompt(processor, QUESTION, "Be brief.") == "Be brief. " + HUB_RENDERING["llava_next_video"]
