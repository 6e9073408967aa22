"""The prompt and its token ids, exactly as transformers' processor builds them.

Text: the processor's own chat template, with the video first in the user turn, then the
harness's question text (the layout of the model cards). `system_prompt` adds a system
turn before it (e.g. "You are a helpful assistant.", the LLaVA-NeXT `qwen_1_5`
conversation lmms-eval's built-in llava_onevision model uses); by default there is none,
which is what transformers renders with the checkpoint's template.

Ids: transformers' `ProcessorMixin.apply_chat_template(tokenize=True)` tokenizes the
rendered prompt with the tokenizer's special tokens *unless the prompt already starts
with the BOS token* (processing_utils.py), and `processor(text=prompt)` always adds them.
So a Llama/Vicuna tokenizer puts its BOS `<s>` in front of a template without one
(LLaVA-NeXT-Video), a Qwen2 tokenizer adds nothing (OneVision), and a template that
writes BOS itself gets no second one. `prompt_ids` follows that rule for any tokenizer.
"""

from __future__ import annotations


def build_prompt(processor, context: str, system_prompt: str | None = None) -> str:
    # Harness contexts for video tasks carry no placeholder; drop any stray one so the
    # prompt holds exactly the single video placeholder the template inserts.
    for token in (getattr(processor, "video_token", "<video>"), getattr(processor, "image_token", "<image>")):
        context = context.replace(token, "")
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": context}]}]
    if system_prompt:
        messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def adds_special_tokens(tokenizer, prompt: str) -> bool:
    """The processor's rule: special tokens unless the prompt already starts with BOS."""
    bos = tokenizer.bos_token
    return not (bos is not None and prompt.startswith(bos))


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids of a rendered prompt (its single video placeholder not yet expanded).

    For loglikelihood, prompt and prompt+continuation get the same decision (both start
    with the prompt), so BOS appears once, at the start of both."""
    return tokenizer(prompt, add_special_tokens=adds_special_tokens(tokenizer, prompt))["input_ids"]

