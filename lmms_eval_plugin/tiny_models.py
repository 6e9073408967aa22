"""Tiny random-weight checkpoints of the two supported architectures.

They are the embedded default (`pretrained=tiny-random-onevision` /
`pretrained=tiny-random-nextvideo`) that lets the README's run command work on an
offline machine, and the test fixture. Their answers are meaningless: they only prove
that the pipeline (decoding, prompt, vision tower, pooling, RoPE, generation, scoring)
runs end to end.

The vision grids are the real ones (27x27 for OneVision, 24x24 for NeXT-Video, via a
tiny image size and patch size 2), so visual token counts equal the 7B models'.
Everything is built from configs with a fixed seed, saved with `save_pretrained` and
then loaded through the same `from_pretrained` path a user's hub id takes.
"""

from __future__ import annotations

import os
from pathlib import Path

TINY_NAMES = {"tiny-random-onevision": "llava_onevision", "tiny-random-nextvideo": "llava_next_video"}

_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]

# Chat templates written in the layout of the model cards: the video comes first in the
# user turn, then the question.
_ONEVISION_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>\n{% elif c['type'] == 'video' %}<video>\n{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_NEXTVIDEO_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] if message['content'] is string else message['content'][0]['text'] }} "
    "{% else %}{{ message['role'].upper() }}: "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>\n{% elif c['type'] == 'video' %}<video>\n{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %} {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

_CORPUS = [
    "What is happening in the video? Answer with the option's letter from the given choices directly.",
    "Only give the best option. Best option: (A) (B) (C) (D) A. B. C. D.",
    "The red square moves to the left while the blue circle stays still. How many objects are there?",
    "system user assistant You are a helpful assistant. USER: ASSISTANT:",
    "0 1 2 3 4 5 6 7 8 9 yes no color count action order scene event topic needle anomaly",
]


def cache_root() -> Path:
    """Where the embedded default checkpoints are materialised (once per machine)."""
    base = os.environ.get("LVU_EXT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "lvu_ext")
    return Path(base)


def _build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384, special_tokens=_SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>", "video_token": "<video>"},
    )


def _onevision(tokenizer):
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
        Qwen2Config,
        SiglipVisionConfig,
    )

    side = 54  # 54 px / patch 2 = the real 27x27 grid
    vision = SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=side, patch_size=2
    )
    text = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=32768, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    pinpoints = [[side, side], [side, 2 * side], [2 * side, side], [2 * side, 2 * side]]
    config = LlavaOnevisionConfig(
        vision_config=vision, text_config=text, image_grid_pinpoints=pinpoints,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_layer=-1, vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_9",
    )
    model = LlavaOnevisionForConditionalGeneration(config)
    size = {"height": side, "width": side}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints),
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        tokenizer=tokenizer, num_image_tokens=(side // 2) ** 2, vision_feature_select_strategy="full",
        chat_template=_ONEVISION_TEMPLATE,
    )
    return model, processor


def _nextvideo(tokenizer):
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextImageProcessor,
        LlavaNextVideoConfig,
        LlavaNextVideoForConditionalGeneration,
        LlavaNextVideoProcessor,
        LlavaNextVideoVideoProcessor,
    )

    side = 48  # 48 px / patch 2 = the real 24x24 grid
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=side, patch_size=2,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=4096, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    pinpoints = [[side, side], [side, 2 * side], [2 * side, side], [2 * side, 2 * side]]
    config = LlavaNextVideoConfig(
        vision_config=vision, text_config=text, image_grid_pinpoints=pinpoints,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_layer=-2, vision_feature_select_strategy="default", spatial_pool_mode="average", spatial_pool_stride=2,
    )
    model = LlavaNextVideoForConditionalGeneration(config)
    processor = LlavaNextVideoProcessor(
        image_processor=LlavaNextImageProcessor(
            size={"shortest_edge": side}, crop_size={"height": side, "width": side}, image_grid_pinpoints=pinpoints
        ),
        video_processor=LlavaNextVideoVideoProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side}),
        tokenizer=tokenizer, patch_size=2, vision_feature_select_strategy="default", chat_template=_NEXTVIDEO_TEMPLATE,
    )
    return model, processor


def pin_greedy_generation(model, tokenizer) -> None:
    """Greedy defaults with this tokenizer's EOS/pad, so `generate` (stock or through
    lvu_ext) behaves the same everywhere."""
    model.generation_config.do_sample = False
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id


def build_tiny_checkpoint(family: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Build a random checkpoint of `family` from config and `save_pretrained` it to out_dir."""
    import torch

    builders = {"llava_onevision": _onevision, "llava_next_video": _nextvideo}
    if family not in builders:
        raise ValueError(f"unknown family {family!r}; expected one of {sorted(builders)}")
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    model, processor = builders[family](_build_tokenizer())
    model.eval()
    pin_greedy_generation(model, processor.tokenizer)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    return out_dir


def ensure_tiny_checkpoint(name: str) -> Path:
    """Path of the embedded default checkpoint `name`, building it once (file-locked, so
    several `accelerate` processes starting together build it only once)."""
    from filelock import FileLock

    family = TINY_NAMES[name]
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not (target / "config.json").exists():
            tmp = root / f"{name}.partial"
            build_tiny_checkpoint(family, tmp)
            tmp.rename(target)
    return target
