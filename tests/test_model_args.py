"""Impossible or unknown model args fail before any weight is loaded, with a message
that names the arg and what is allowed."""

import json

import pytest

from conftest import make_lm
from lmms_eval_plugin.checkpoints.families import UnsupportedModelError
from lmms_eval_plugin.model_args import ModelArgError, parse_model_args, valid_keys
from lmms_eval_plugin.models.lvu_ext import LvuExt

MISSING = "/nonexistent/checkpoint"  # loading it would fail: arg errors must come first


@pytest.mark.parametrize(
    "kwargs,fragments",
    [
        ({"num_frame": "32"}, ["num_frame", "Valid keys", "num_frames", "rope_ext", "pooling"]),
        ({"num_frames": "many"}, ["num_frames", "many"]),
        ({"num_frames": "0"}, ["num_frames", ">= 1"]),
        ({"fps": "-1"}, ["fps", "> 0"]),
        ({"dtype": "float8"}, ["dtype", "bfloat16", "float16", "float32"]),
        ({"rope_ext": "ntk"}, ["rope_ext", "vcwe", "yarn_language"]),
        ({"rope_factor": "big"}, ["rope_factor"]),
        ({"rope_attn_scale": "sqrt"}, ["rope_attn_scale", "yarn", "none"]),
        ({"pooling": "max"}, ["pooling", "progressive", "uniform"]),
        ({"pp_group": "0"}, ["pp_group", ">= 1"]),
        ({"pp_high_stride": "8", "pp_low_stride": "2"}, ["pp_high_stride", "pp_low_stride"]),
        ({"pooling": "uniform"}, ["pool_stride"]),
        ({"on_video_error": "skip"}, ["on_video_error", "continue", "raise"]),
        ({"vision_batch": "0"}, ["vision_batch"]),
        ({"trust_remote_code": "maybe"}, ["trust_remote_code"]),
        ({"rope_alpha": "40", "rope_beta": "32"}, ["rope_alpha", "rope_beta"]),
        ({"frame_cache_stage": "resized"}, ["frame_cache_stage", "decoded", "processed"]),
        ({"frame_cache_stage": "processed"}, ["frame_cache_stage", "unless frame_cache is set"]),
    ],
)
def test_bad_args_fail_before_loading(kwargs, fragments):
    with pytest.raises(ModelArgError) as err:
        LvuExt(pretrained=MISSING, **kwargs)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, message


def test_unknown_key_lists_every_valid_key():
    with pytest.raises(ModelArgError) as err:
        parse_model_args(pretrianed="x")
    for key in valid_keys():
        assert key in str(err.value)


def test_stride_leaving_no_tokens_is_refused(tiny_checkpoints):
    with pytest.raises(ModelArgError) as err:
        make_lm(tiny_checkpoints["llava_next_video"], pooling="uniform", pool_stride=30)
    assert "pool_stride" in str(err.value) and "24x24" in str(err.value)


def test_unsupported_architecture_lists_supported(tmp_path):
    from transformers import LlavaConfig

    LlavaConfig().save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError) as err:
        LvuExt(pretrained=str(tmp_path))
    assert "'llava'" in str(err.value) and "llava_onevision" in str(err.value) and "llava_next_video" in str(err.value)


def test_checkpoint_with_rope_scaling_is_not_scaled_twice(tiny_checkpoints, tmp_path):
    """Linear scaling composes (METHOD.md 1b, tests/test_nextvideo_linear_rope.py); a type
    without a written rule is refused before any weight is loaded."""
    import shutil

    ckpt = tmp_path / "scaled"
    shutil.copytree(tiny_checkpoints["llava_onevision"], ckpt)
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["text_config"]["rope_scaling"] = {"type": "dynamic", "factor": 2.0}  # hub spelling, as the fixture writes it
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError) as err:
        make_lm(ckpt, rope_ext="vcwe")
    assert "dynamic" in str(err.value) and "rope_ext=none" in str(err.value)
    make_lm(ckpt, rope_ext="none")  # the checkpoint's own scaling alone is fine
