"""The supported architectures, detected from `config.model_type`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    model_type: str
    model_class: str  # transformers class name
    visual_window: int  # L_train (METHOD.md section 1, an assumption: 32 frames x tokens/frame)
    pools_before_projector: bool  # NeXT-Video pools vision features, OneVision pools projected ones
    closes_with_newline: bool  # OneVision appends one image_newline token after the video


FAMILIES = {
    "llava_onevision": Family("llava_onevision", "LlavaOnevisionForConditionalGeneration", 6272, False, True),
    "llava_next_video": Family("llava_next_video", "LlavaNextVideoForConditionalGeneration", 4608, True, False),
}


class UnsupportedModelError(ValueError):
    pass


def detect_family(config) -> Family:
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise UnsupportedModelError(
            f"lvu_ext: config.model_type={model_type!r} is not supported. Supported: "
            + ", ".join(sorted(FAMILIES))
            + " (e.g. llava-hf/llava-onevision-qwen2-7b-ov-hf, llava-hf/LLaVA-NeXT-Video-7B-hf; "
            "LLaVA-Video-7B-Qwen2 in its llava_onevision HF conversion)."
        )
    return FAMILIES[model_type]


def grid_side(config) -> int:
    """Patches per side of one frame's feature grid (27 for SigLIP-384/14, 24 for CLIP-336/14)."""
    return config.vision_config.image_size // config.vision_config.patch_size


def native_stride(config, family: Family) -> int:
    """The pooling stride the checkpoint was trained with."""
    return int(getattr(config, "spatial_pool_stride", 2)) if family.pools_before_projector else 2
