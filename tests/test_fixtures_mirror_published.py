"""One test per published fact the tiny checkpoints mirror, read back from the saved
files through transformers' loaders, so a drift in lmms_eval_plugin/checkpoints/tiny_models.py fails.

The expected values are written here independently of the fixture code, from:
  [ov] llava-hf/llava-onevision-qwen2-7b-ov-hf: transformers' convert_llava_onevision_weights_to_hf.py
       (Qwen/Qwen2-7B-Instruct text config, SigLIP so400m-patch14-384 preprocessor, chat template)
       and LlavaOnevisionConfig's defaults;
  [nv] llava-hf/LLaVA-NeXT-Video-7B-hf: convert_llava_next_video_weights_to_hf.py (vicuna-7b-v1.5,
       CLIP ViT-L/14-336 preprocessor, <video> 32000 / <image> 32001), LlavaNextVideoConfig's defaults,
       transformers' integration test (ids [1, ..., 32000, 13, ...]); rope_scaling linear 2.5 as the
       project reads the hub config (METHOD.md 1b).
Pixel sizes are the published ones times the fixture's shrink factor (image side 384 -> 54 for
OneVision, 336 -> 48 for NeXT-Video, patch 14 -> 2), which keeps the published patch grids.
"""

import json
from functools import lru_cache
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoProcessor

OV, NV = "llava_onevision", "llava_next_video"
OV_SCALE, NV_SCALE = 54 / 384, 48 / 336
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


@lru_cache(maxsize=4)  # loaded once per checkpoint; each fact reads its own value
def config(ckpt):
    return AutoConfig.from_pretrained(ckpt)


@lru_cache(maxsize=4)
def processor(ckpt):
    return AutoProcessor.from_pretrained(ckpt)


def raw_text_config(ckpt):
    return json.loads((Path(ckpt) / "config.json").read_text())["text_config"]


def scaled(pairs, k):
    return [[round(h * k), round(w * k)] for h, w in pairs]


def tokenize(ckpt, text):
    return processor(ckpt).tokenizer(text)["input_ids"]


FACTS = {
    # --- LLaVA-OneVision-7B ---------------------------------------------------------------
    (OV, "vision_feature_layer"): (lambda c: config(c).vision_feature_layer, -1),
    (OV, "vision_feature_select_strategy"): (lambda c: config(c).vision_feature_select_strategy, "full"),
    (OV, "vision_aspect_ratio"): (lambda c: config(c).vision_aspect_ratio, "anyres_max_9"),
    (OV, "image_token_id"): (lambda c: config(c).image_token_id, 151646),
    (OV, "video_token_id"): (lambda c: config(c).video_token_id, 151647),
    (OV, "image_grid_pinpoints"): (
        lambda c: config(c).image_grid_pinpoints, scaled([[384 * h, 384 * w] for h in range(1, 7) for w in range(1, 7)], OV_SCALE)
    ),
    (OV, "rope_theta"): (lambda c: config(c).text_config.rope_parameters["rope_theta"], 1000000.0),
    (OV, "rope_scaling (none)"): (lambda c: config(c).text_config.rope_parameters["rope_type"], "default"),
    (OV, "max_position_embeddings"): (lambda c: config(c).text_config.max_position_embeddings, 32768),
    (OV, "vocab_size"): (lambda c: config(c).text_config.vocab_size, 152128),
    (OV, "patch grid 27x27"): (lambda c: config(c).vision_config.image_size // config(c).vision_config.patch_size, 27),
    (OV, "num_image_tokens 729"): (lambda c: processor(c).num_image_tokens, 729),
    (OV, "image size"): (lambda c: dict(processor(c).image_processor.size), {"height": 54, "width": 54}),
    (OV, "video size"): (lambda c: dict(processor(c).video_processor.size), {"height": 54, "width": 54}),
    (OV, "no center crop"): (lambda c: bool(processor(c).video_processor.do_center_crop), False),
    (OV, "resample bicubic"): (lambda c: int(processor(c).video_processor.resample), 3),
    (OV, "mean"): (lambda c: list(processor(c).video_processor.image_mean), [0.5, 0.5, 0.5]),
    (OV, "std"): (lambda c: list(processor(c).video_processor.image_std), [0.5, 0.5, 0.5]),
    (OV, "image mean/std"): (
        lambda c: (list(processor(c).image_processor.image_mean), list(processor(c).image_processor.image_std)),
        ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    ),
    (OV, "chat template (no system turn)"): (
        lambda c: processor(c).apply_chat_template(
            [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]}], add_generation_prompt=True, tokenize=False
        ),
        "<|im_start|>user\n<video>\nQ?<|im_end|>\n<|im_start|>assistant\n",
    ),
    (OV, "tokenizer: no BOS"): (lambda c: (processor(c).tokenizer.bos_token, tokenize(c, "hi")[0] != 151643), (None, True)),
    (OV, "tokenizer: EOS <|im_end|>"): (lambda c: (processor(c).tokenizer.eos_token, processor(c).tokenizer.eos_token_id), ("<|im_end|>", 151645)),
    (OV, "tokenizer: pad <|endoftext|>"): (lambda c: processor(c).tokenizer.pad_token_id, 151643),
    (OV, "tokenizer: special ids"): (
        lambda c: processor(c).tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]),
        [151643, 151644, 151645, 151646, 151647],
    ),
    # --- LLaVA-NeXT-Video-7B --------------------------------------------------------------
    (NV, "vision_feature_layer"): (lambda c: config(c).vision_feature_layer, -2),
    (NV, "vision_feature_select_strategy"): (lambda c: config(c).vision_feature_select_strategy, "default"),
    (NV, "image_token_id"): (lambda c: config(c).image_token_id, 32001),
    (NV, "video_token_id"): (lambda c: config(c).video_token_id, 32000),
    (NV, "image_grid_pinpoints"): (
        lambda c: config(c).image_grid_pinpoints, scaled([[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]], NV_SCALE)
    ),
    (NV, "spatial_pool_mode"): (lambda c: config(c).spatial_pool_mode, "average"),
    (NV, "spatial_pool_stride"): (lambda c: config(c).spatial_pool_stride, 2),
    (NV, "rope_theta"): (lambda c: config(c).text_config.rope_parameters["rope_theta"], 10000.0),
    (NV, "rope_scaling linear 2.5"): (
        lambda c: (config(c).text_config.rope_parameters["rope_type"], config(c).text_config.rope_parameters["factor"]), ("linear", 2.5)
    ),
    (NV, "rope_scaling spelled as on the hub"): (
        lambda c: (raw_text_config(c)["rope_scaling"], raw_text_config(c)["rope_theta"]), ({"type": "linear", "factor": 2.5}, 10000.0)
    ),
    (NV, "max_position_embeddings"): (lambda c: config(c).text_config.max_position_embeddings, 4096),
    (NV, "vocab_size"): (lambda c: config(c).text_config.vocab_size, 32064),
    (NV, "patch grid 24x24"): (lambda c: config(c).vision_config.image_size // config(c).vision_config.patch_size, 24),
    (NV, "size shortest_edge"): (lambda c: dict(processor(c).video_processor.size), {"shortest_edge": 48}),
    (NV, "crop size"): (lambda c: dict(processor(c).video_processor.crop_size), {"height": 48, "width": 48}),
    (NV, "center crop"): (lambda c: bool(processor(c).video_processor.do_center_crop), True),
    (NV, "resample bicubic"): (lambda c: int(processor(c).video_processor.resample), 3),
    (NV, "mean"): (lambda c: list(processor(c).video_processor.image_mean), CLIP_MEAN),
    (NV, "std"): (lambda c: list(processor(c).video_processor.image_std), CLIP_STD),
    (NV, "image processor size/crop/mean/std"): (
        lambda c: (dict(processor(c).image_processor.size), dict(processor(c).image_processor.crop_size),
                   list(processor(c).image_processor.image_mean), list(processor(c).image_processor.image_std)),
        ({"shortest_edge": 48}, {"height": 48, "width": 48}, CLIP_MEAN, CLIP_STD),
    ),
    (NV, "chat template"): (
        lambda c: processor(c).apply_chat_template(
            [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]}], add_generation_prompt=True, tokenize=False
        ),
        "USER: <video>\nQ? ASSISTANT:",
    ),
    (NV, "tokenizer: BOS <s> added"): (
        lambda c: (processor(c).tokenizer.bos_token, tokenize(c, "USER: <video>\nQ? ASSISTANT:")[0]), ("<s>", 1)
    ),
    (NV, "tokenizer: EOS </s>"): (lambda c: (processor(c).tokenizer.eos_token, processor(c).tokenizer.eos_token_id), ("</s>", 2)),
    (NV, "tokenizer: no EOS appended"): (lambda c: tokenize(c, "Q?")[-1] != 2, True),
    (NV, "tokenizer: video token then newline byte"): (
        lambda c: tokenize(c, "USER: <video>\nQ?")[-4:-2], [32000, 13]  # <video>, <0x0A> as in transformers' test
    ),
    (NV, "tokenizer: special ids"): (
        lambda c: processor(c).tokenizer.convert_tokens_to_ids(["<unk>", "<s>", "</s>", "<video>", "<image>"]), [0, 1, 2, 32000, 32001]
    ),
}


@pytest.mark.parametrize("family,fact", list(FACTS), ids=[f"{f}:{n}" for f, n in FACTS])
def test_fixture_mirrors_published_value(family, fact, tiny_checkpoints):
    read, published = FACTS[(family, fact)]
    assert read(str(tiny_checkpoints[family])) == published
