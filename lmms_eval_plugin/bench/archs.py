"""Random-weight LLaVA-OneVision models for the benchmark, built from configs.

* `7b`: the real llava-hf/llava-onevision-qwen2-7b-ov-hf architecture (GPU runs).
* `cpu-mid`: a small model of the same architecture whose *activations* dominate its
  weights, as they do for the 7B model at hundreds of frames on a GPU; sized so the
  stock 256-frame case fits a 24 GB, 2-core machine in a few minutes.
* `tiny`: the embedded tiny checkpoint (CI smoke test).

All keep the real 27x27 patch grid (so visual token counts equal the 7B model's);
the small ones get there cheaply with a 54 px image and patch size 2.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from lmms_eval_plugin.checkpoints.tiny_models import pin_greedy_generation


@dataclass(frozen=True)
class Arch:
    name: str
    image_side: int
    patch: int
    vision: dict = field(default_factory=dict)  # SiglipVisionConfig kwargs
    text: dict = field(default_factory=dict)  # Qwen2Config kwargs
    vocab_size: int | None = None  # None: the bench tokenizer's own size
    note: str = ""


QWEN2_ROPE = {"rope_type": "default", "rope_theta": 1000000.0}

ARCHS = {
    # llava-hf/llava-onevision-qwen2-7b-ov-hf. SigLIP-so400m has 27 layers; the llava-hf
    # checkpoint keeps 26 and reads the last one (vision_feature_layer=-1, strategy "full").
    "7b": Arch(
        "7b", image_side=384, patch=14,
        vision=dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=26, num_attention_heads=16,
                    layer_norm_eps=1e-6, vision_use_head=False),
        text=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                  num_key_value_heads=4, max_position_embeddings=32768, rms_norm_eps=1e-6, rope_parameters=QWEN2_ROPE),
        vocab_size=152064,
        note="LLaVA-OneVision-7B architecture (Qwen2-7B + SigLIP-so400m/14-384), random bf16 weights",
    ),
    # Wide MLPs and few layers: per-token activation memory of the same order as the 7B
    # model's while a 256-frame prefill (50k tokens) still runs in minutes on 2 CPU cores.
    "cpu-mid": Arch(
        "cpu-mid", image_side=54, patch=2,
        vision=dict(hidden_size=256, intermediate_size=2048, num_hidden_layers=1, num_attention_heads=4, vision_use_head=False),
        text=dict(hidden_size=256, intermediate_size=12288, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=32768, rope_parameters=QWEN2_ROPE),
        note="OneVision architecture, real 27x27 grid via 54 px / patch 2, activation-dominated random fp32 weights",
    ),
}
TINY = "tiny"
ARCH_NAMES = (TINY, *ARCHS)


def override(arch: Arch, **sizes) -> Arch:
    """`arch` with some sizes replaced (`vision_*` / `text_*` keys), e.g. a 2-layer 7B
    for a CPU dry run."""
    vision, text = dict(arch.vision), dict(arch.text)
    for key, value in sizes.items():
        target, name = (vision, key[7:]) if key.startswith("vision_") else (text, key[5:])
        target[name] = value
    return Arch(arch.name, arch.image_side, arch.patch, vision, text, arch.vocab_size, arch.note)


def build_config_and_processor(arch: Arch):
    """(LlavaOnevisionConfig, LlavaOnevisionProcessor) of `arch`, with the bench tokenizer."""
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
        Qwen2Config,
        SiglipVisionConfig,
    )

    from lmms_eval_plugin.checkpoints.tiny_models import _ONEVISION_TEMPLATE, _build_tokenizer

    tokenizer = _build_tokenizer()
    side = arch.image_side
    vision = SiglipVisionConfig(image_size=side, patch_size=arch.patch, **arch.vision)
    text = Qwen2Config(
        vocab_size=arch.vocab_size or len(tokenizer), tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **arch.text,
    )
    pinpoints = [[side, side], [side, 2 * side], [2 * side, side], [2 * side, 2 * side]]
    config = LlavaOnevisionConfig(
        vision_config=vision, text_config=text, image_grid_pinpoints=pinpoints,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_layer=-1, vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_9",
    )
    size = {"height": side, "width": side}
    grid = side // arch.patch
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints),
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        tokenizer=tokenizer, num_image_tokens=grid * grid, vision_feature_select_strategy="full",
        chat_template=_ONEVISION_TEMPLATE,
    )
    return config, processor


def parameter_counts(config) -> dict[str, int]:
    """Parameters per part, counted on the meta device (nothing allocated)."""
    import torch
    from transformers import LlavaOnevisionForConditionalGeneration

    with torch.device("meta"):
        model = LlavaOnevisionForConditionalGeneration(config)
    inner = model.model

    def count(module):
        return sum(p.numel() for p in module.parameters())

    return {
        "vision_tower": count(inner.vision_tower),
        "projector": count(inner.multi_modal_projector) + inner.image_newline.numel(),
        "language_model": count(inner.language_model) + count(model.lm_head),
        "total": count(model),
    }


def save_checkpoint(arch_name: str, out_dir: Path, seed: int = 0) -> Path:
    """Random weights of a small arch saved with save_pretrained (loaded back with from_pretrained)."""
    import torch
    from transformers import LlavaOnevisionForConditionalGeneration

    from lmms_eval_plugin.checkpoints.tiny_models import build_tiny_checkpoint

    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists():
        return out_dir
    tmp = out_dir.with_name(out_dir.name + ".partial")
    if arch_name == TINY:
        build_tiny_checkpoint("llava_onevision", tmp, seed=seed)
    else:
        config, processor = build_config_and_processor(ARCHS[arch_name])
        torch.manual_seed(seed)
        model = LlavaOnevisionForConditionalGeneration(config).eval()
        pin_greedy_generation(model, processor.tokenizer)
        tmp.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
    tmp.rename(out_dir)
    return out_dir


def save_config_only(arch: Arch, out_dir: Path) -> Path:
    """Config + processor without weights: for models built straight on the GPU."""
    config, processor = build_config_and_processor(arch)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def build_on_device(config_dir: Path, device: str, dtype, seed: int = 0):
    """Random model constructed directly on `device` in `dtype` (never materialised on the
    CPU first: 7B in bf16 is 16 GB)."""
    import torch
    from transformers import (
        AutoConfig,
        AutoTokenizer,
        LlavaOnevisionForConditionalGeneration,
    )

    config = AutoConfig.from_pretrained(config_dir)
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlavaOnevisionForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation="sdpa")
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    pin_greedy_generation(model, AutoTokenizer.from_pretrained(config_dir))
    return model


def arch_tag(arch_name: str, arch) -> str:
    """Cache folder name that changes whenever the architecture's numbers do."""
    return f"{arch_name}-{hashlib.sha256(repr(arch).encode()).hexdigest()[:10]}"
