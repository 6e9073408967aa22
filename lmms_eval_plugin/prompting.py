"""The prompt, built with the processor's own chat template: the video first in the
user turn, then the harness's question text (the layout of the model cards)."""

from __future__ import annotations


def build_prompt(processor, context: str) -> str:
    # Harness contexts for video tasks carry no placeholder; drop any stray one so the
    # prompt holds exactly the single video placeholder the template inserts.
    for token in (getattr(processor, "video_token", "<video>"), getattr(processor, "image_token", "<image>")):
        context = context.replace(token, "")
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": context}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
