"""Tiny random-weight checkpoints that mirror the two published llava-hf checkpoints.

They are the embedded default (`pretrained=tiny-random-onevision` /
`pretrained=tiny-random-nextvideo`) that lets the README's run command work on an
offline machine, and the test fixture. Their answers are meaningless: they only prove
that the pipeline (decoding, prompt, vision tower, pooling, RoPE, generation, scoring)
runs end to end.

Mirrored from the published checkpoints, unchanged: every config value that decides what
the model sees or how it computes (vision feature layer / select strategy, RoPE theta,
max positions and scaling, image/video token ids, grid pinpoints, spatial pooling,
vocabulary size, processors' resize / crop / resample / mean / std, chat templates,
tokenizer behaviour). Shrunk: widths, depths, head counts and the learned vocabulary
(see tiny_tokenizers.py), and the vision image size with the patch size, by the same
factor, so the patch grid stays the real one (27x27 for SigLIP-384/14, 24x24 for
CLIP-336/14) and visual token counts equal the 7B models'. Pixel sizes in the processors
and pinpoints are scaled by that factor too.

Sources of the values (cited per value below):
  [ov-conv]  transformers src/transformers/models/llava_onevision/convert_llava_onevision_weights_to_hf.py
             (text config of Qwen/Qwen2-7B-Instruct, SigLIP so400m-patch14-384 image processor,
             the chat template written to the hub repo, num_image_tokens 729, strategy "full")
  [ov-cfg]   transformers LlavaOnevisionConfig defaults = llava-hf/llava-onevision-qwen2-7b-ov-hf
  [nv-conv]  transformers src/transformers/models/llava_next_video/convert_llava_next_video_weights_to_hf.py
             (text config of lmsys/vicuna-7b-v1.5 + linear RoPE scaling, <video> 32000 / <image> 32001,
             CLIP ViT-L/14-336 image processor, vocabulary padded to a multiple of 64)
  [nv-cfg]   transformers LlavaNextVideoConfig defaults = llava-hf/LLaVA-NeXT-Video-7B-hf
  [nv-test]  transformers tests/models/llava_next_video/test_modeling_llava_next_video.py (integration
             test: prompt "USER: <video>\\n... ASSISTANT:", ids start [1, ...], video id 32000)
  [issue-11] the project's reading of the hub config.json (rope_scaling linear factor 2.5,
             max_position_embeddings 4096; METHOD.md 1b). The conversion script writes 2.0; the hub
             file is what users load, so 2.5 is mirrored.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

TINY_NAMES = {"tiny-random-onevision": "llava_onevision", "tiny-random-nextvideo": "llava_next_video"}
# Bumped whenever the fixtures change, so a stale embedded default in the cache is rebuilt.
FIXTURE_VERSION = 2

# ---- chat templates, verbatim ---------------------------------------------------------
# [ov-conv] `chat_template`: no system turn; renders
# "<|im_start|>user\n<video>\n{question}<|im_end|>\n<|im_start|>assistant\n".
ONEVISION_CHAT_TEMPLATE = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all video then #}{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}{{ content['text'] }}{% endgeneration %}{% endfor %}{% endif %}{{'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"  # noqa: E501
# The llava-hf Vicuna template (transformers tests/models/llava/test_processing_llava.py,
# llava-1.5 / llava-v1.6-vicuna chat_template.json) with the video block the NeXT-Video
# repo adds, in the same style as the OneVision one; renders
# "USER: <video>\n{question} ASSISTANT:" exactly as [nv-test]'s prompt. No BOS in the
# template: the tokenizer adds it. A system message renders as "{text} " before "USER:".
NEXTVIDEO_CHAT_TEMPLATE = "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all video then #}{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"  # noqa: E501

# Kept for lmms_eval_plugin/bench/archs.py (OneVision-architecture bench checkpoints).
_ONEVISION_TEMPLATE = ONEVISION_CHAT_TEMPLATE

SIGLIP_MEAN_STD = [0.5, 0.5, 0.5]  # [ov-conv] SigLIP so400m-patch14-384 preprocessor
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]  # [nv-conv] CLIP ViT-L/14-336 preprocessor
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
BICUBIC = 3  # PIL resample id of both preprocessors


def cache_root() -> Path:
    """Where the embedded default checkpoints are materialised (once per machine)."""
    base = os.environ.get("LVU_EXT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "lvu_ext")
    return Path(base)


def _build_tokenizer():
    """The OneVision (Qwen2-style) tokenizer; the bench builds its checkpoints with it."""
    from lmms_eval_plugin.checkpoints.tiny_tokenizers import qwen2_tokenizer

    return qwen2_tokenizer()


def _onevision():
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
        Qwen2Config,
        SiglipVisionConfig,
    )

    tokenizer = _build_tokenizer()
    scale = 54 / 384  # image side 384 -> 54 with patch 14 -> 2: the 27x27 grid is kept
    side = 54
    vision = SiglipVisionConfig(  # shrunk widths/depth; [ov-conv]: no head, last layer dropped
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=side, patch_size=2,
        vision_use_head=False, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
    )
    text = Qwen2Config(  # [ov-conv] Qwen2-7B-Instruct values except widths/depth
        vocab_size=152128,  # 152064 + <image>, <video>, padded to a multiple of 64 by the conversion
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=32768, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        rms_norm_eps=1e-6, hidden_act="silu", tie_word_embeddings=False, use_sliding_window=False, sliding_window=131072,
        bos_token_id=151643, eos_token_id=151645,
    )
    real_pinpoints = [[384 * h, 384 * w] for h in range(1, 7) for w in range(1, 7)]  # [ov-cfg] 384..2304 grid
    pinpoints = [[round(h * scale), round(w * scale)] for h, w in real_pinpoints]
    config = LlavaOnevisionConfig(
        vision_config=vision, text_config=text, image_grid_pinpoints=pinpoints,
        image_token_id=151646, video_token_id=151647,  # [ov-cfg]
        vision_feature_layer=-1, vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_9",  # [ov-cfg]
        projector_hidden_act="gelu", multimodal_projector_bias=True, tie_word_embeddings=False,
    )
    model = LlavaOnevisionForConditionalGeneration(config)
    size = {"height": side, "width": side}
    pixels = dict(size=size, resample=BICUBIC, image_mean=SIGLIP_MEAN_STD, image_std=SIGLIP_MEAN_STD, do_rescale=True,
                  rescale_factor=1 / 255, do_normalize=True, do_convert_rgb=True)
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(image_grid_pinpoints=pinpoints, do_pad=True, **pixels),
        video_processor=LlavaOnevisionVideoProcessor(**pixels),
        tokenizer=tokenizer, num_image_tokens=(side // 2) ** 2, vision_feature_select_strategy="full",  # 729 [ov-conv]
        chat_template=ONEVISION_CHAT_TEMPLATE,
    )
    return model, processor


# [nv-cfg] LLaVA-NeXT-Video-7B-hf image_grid_pinpoints (CLIP-336 tiles)
NEXTVIDEO_REAL_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
NEXTVIDEO_ROPE_SCALING = {"type": "linear", "factor": 2.5}  # [issue-11]


def _nextvideo():
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextImageProcessor,
        LlavaNextVideoConfig,
        LlavaNextVideoForConditionalGeneration,
        LlavaNextVideoProcessor,
        LlavaNextVideoVideoProcessor,
    )

    from lmms_eval_plugin.checkpoints.tiny_tokenizers import llama_tokenizer

    tokenizer = llama_tokenizer()
    scale = 48 / 336  # image side 336 -> 48 with patch 14 -> 2: the 24x24 grid is kept
    side = 48
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=side, patch_size=2,
        projection_dim=32, hidden_act="quick_gelu", layer_norm_eps=1e-5,
    )
    text = LlamaConfig(  # [nv-conv] vicuna-7b-v1.5 values except widths/depth
        vocab_size=32064,  # 32000 + <video>, <image>, padded to a multiple of 64 by the conversion
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=4096,
        rope_parameters={"rope_type": NEXTVIDEO_ROPE_SCALING["type"], "factor": NEXTVIDEO_ROPE_SCALING["factor"], "rope_theta": 10000.0},
        rms_norm_eps=1e-5, hidden_act="silu", tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    pinpoints = [[round(h * scale), round(w * scale)] for h, w in NEXTVIDEO_REAL_PINPOINTS]
    config = LlavaNextVideoConfig(
        vision_config=vision, text_config=text, image_grid_pinpoints=pinpoints,
        video_token_id=32000, image_token_id=32001,  # [nv-conv]
        vision_feature_layer=-2, vision_feature_select_strategy="default",  # [nv-cfg]
        spatial_pool_mode="average", spatial_pool_stride=2,  # [nv-cfg]
        projector_hidden_act="gelu", tie_word_embeddings=False,
    )
    model = LlavaNextVideoForConditionalGeneration(config)
    pixels = dict(size={"shortest_edge": side}, crop_size={"height": side, "width": side}, do_center_crop=True,
                  resample=BICUBIC, image_mean=CLIP_MEAN, image_std=CLIP_STD, do_rescale=True, rescale_factor=1 / 255,
                  do_normalize=True, do_convert_rgb=True)
    processor = LlavaNextVideoProcessor(
        image_processor=LlavaNextImageProcessor(image_grid_pinpoints=pinpoints, **pixels),
        video_processor=LlavaNextVideoVideoProcessor(**pixels),
        tokenizer=tokenizer, patch_size=2, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=NEXTVIDEO_CHAT_TEMPLATE,
    )
    return model, processor


def _write_hub_style_rope(out_dir: Path) -> None:
    """Spell the text config's RoPE the way the hub's (pre-transformers-5) config.json does
    (`rope_theta` + `rope_scaling {type, factor}`), so loading exercises transformers'
    own conversion of the published file."""
    path = out_dir / "config.json"
    cfg = json.loads(path.read_text())
    text = cfg["text_config"]
    params = text.pop("rope_parameters", None) or {}
    text["rope_theta"] = params.get("rope_theta")
    text["rope_scaling"] = (
        None if params.get("rope_type", "default") == "default" else {"type": params["rope_type"], "factor": params["factor"]}
    )
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True))


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
    model, processor = builders[family]()
    model.eval()
    pin_greedy_generation(model, processor.tokenizer)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    _write_hub_style_rope(out_dir)
    return out_dir


def _build_here_or_apart(family: str, out_dir: Path) -> None:
    """Once torch.distributed is up (under `accelerate launch`), transformers' save_pretrained
    writes only on rank 0, so a build by whichever other rank took the lock first wrote no
    files: there the build runs in a fresh interpreter, outside the process group."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        build_tiny_checkpoint(family, out_dir)
        return
    import subprocess
    import sys

    code = "import sys; from lmms_eval_plugin.checkpoints.tiny_models import build_tiny_checkpoint as b; b(sys.argv[1], sys.argv[2])"
    proc = subprocess.run([sys.executable, "-c", code, family, str(out_dir)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the embedded {family} checkpoint failed:\n{proc.stderr[-3000:]}")


def ensure_tiny_checkpoint(name: str) -> Path:
    """Path of the embedded default checkpoint `name`, building it once (file-locked, so
    several `accelerate` processes starting together build it only once)."""
    from filelock import FileLock

    family = TINY_NAMES[name]
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"{name}-v{FIXTURE_VERSION}"
    with FileLock(str(root / f"{name}.lock")):
        if not (target / "config.json").exists():
            tmp = root / f"{name}-v{FIXTURE_VERSION}.partial"
            shutil.rmtree(tmp, ignore_errors=True)  # left by an interrupted build
            _build_here_or_apart(family, tmp)
            tmp.rename(target)
    return target


def resolve_pretrained(name: str) -> str:
    """A local checkpoint folder for an embedded tiny name (built on first use); any other
    name (a hub id, a folder) unchanged, for transformers' from_pretrained."""
    if name in TINY_NAMES:
        from loguru import logger

        logger.warning(f"lvu_ext: {name} is a tiny RANDOM model: its answers and scores are meaningless (pipeline check only)")
        return str(ensure_tiny_checkpoint(name))
    return name
