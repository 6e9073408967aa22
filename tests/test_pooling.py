"""Progressive pooling: token counts, equality with transformers' own pooling, order of pool_video."""

import math

import numpy as np
import pytest
import torch
from transformers import (
    CLIPVisionConfig,
    LlavaNextVideoConfig,
    LlavaOnevisionConfig,
    LlavaOnevisionModel,
    Qwen2Config,
    SiglipVisionConfig,
)
from transformers.models.llava_next_video.modeling_llava_next_video import LlavaNextVideoPooler

from lmms_eval_plugin.method.pooling import (
    GRID_SIDE,
    NATIVE_STRIDE,
    NEXT_VIDEO,
    ONEVISION,
    PoolingSettings,
    frame_strides,
    pool_frames,
    pool_video,
    tokens_per_frame,
    visual_token_count,
)

OV_G, NV_G = GRID_SIDE[ONEVISION], GRID_SIDE[NEXT_VIDEO]
PP = PoolingSettings("progressive", group=4, high_stride=2, low_stride=8)


def _feats(n, g, d=8, seed=0):
    return torch.randn(n, g * g, d, generator=torch.Generator().manual_seed(seed))


def _tiny_text():
    return Qwen2Config(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                       num_key_value_heads=2, vocab_size=64)


@pytest.mark.parametrize("stride,n", [(2, 196), (4, 49), (8, 16)])
def test_onevision_tokens_per_frame(stride, n):
    assert tokens_per_frame(ONEVISION, OV_G, stride) == n
    assert pool_frames(_feats(1, OV_G), stride, ONEVISION, OV_G).shape == (1, n, 8)


@pytest.mark.parametrize("stride,n", [(2, 144), (4, 36), (8, 9)])
def test_next_video_tokens_per_frame(stride, n):
    assert tokens_per_frame(NEXT_VIDEO, NV_G, stride) == n
    assert pool_frames(_feats(1, NV_G), stride, NEXT_VIDEO, NV_G).shape == (1, n, 8)


def test_paper_count_256_frames_onevision():
    assert visual_token_count(ONEVISION, 256, PP, OV_G, 2) == 15_616 + 1
    assert visual_token_count(ONEVISION, 256, PoolingSettings(), OV_G, 2) == 256 * 196 + 1


def test_ten_frames_last_short_group():
    assert frame_strides(10, PP, 2) == [2, 8, 8, 8, 2, 8, 8, 8, 2, 8]
    assert visual_token_count(ONEVISION, 10, PP, OV_G, 2) == 3 * 196 + 7 * 16 + 1
    assert visual_token_count(NEXT_VIDEO, 10, PP, NV_G, 2) == 3 * 144 + 7 * 9
    assert frame_strides(3, PoolingSettings("uniform", uniform_stride=4), 2) == [4, 4, 4]
    assert frame_strides(3, PoolingSettings("native"), 2) == [2, 2, 2]


def test_native_onevision_equals_apply_pooling():
    cfg = LlavaOnevisionConfig(
        vision_config=SiglipVisionConfig(image_size=54, patch_size=2, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2),
        text_config=_tiny_text(),
    )
    model = LlavaOnevisionModel(cfg).eval()
    assert cfg.vision_config.image_size // cfg.vision_config.patch_size == OV_G
    x = _feats(5, OV_G, d=16)
    with torch.no_grad():
        expected = model.apply_pooling(x)
    assert torch.equal(pool_frames(x, NATIVE_STRIDE[ONEVISION], ONEVISION, OV_G), expected)
    assert torch.equal(pool_video(x, [2] * 5, ONEVISION, OV_G), expected.reshape(-1, 16))


def _next_video_pooler(stride):
    cfg = LlavaNextVideoConfig(
        vision_config=CLIPVisionConfig(image_size=48, patch_size=2, hidden_size=8, intermediate_size=16,
                                       num_hidden_layers=1, num_attention_heads=2),
        text_config=_tiny_text(),
        spatial_pool_mode="average",
        spatial_pool_stride=stride,
    )
    assert cfg.vision_config.image_size // cfg.vision_config.patch_size == NV_G
    return LlavaNextVideoPooler(cfg)


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_next_video_equals_transformers_pooler(stride):
    x = _feats(5, NV_G)
    with torch.no_grad():
        expected = _next_video_pooler(stride)(x)
    assert torch.equal(pool_frames(x, stride, NEXT_VIDEO, NV_G), expected)


def _bilinear_oracle(frame, out_side):
    """Half-pixel bilinear resize (align_corners=False) in float64 numpy; frame (g, g, D)."""
    g = frame.shape[0]
    scale = g / out_side
    src = np.maximum((np.arange(out_side) + 0.5) * scale - 0.5, 0.0)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, g - 1)
    w = (src - i0)[:, None]
    rows = frame[i0] * (1 - w)[:, :, None] + frame[i1] * w[:, :, None]  # (out, g, D)
    return rows[:, i0] * (1 - w.T)[:, :, None] + rows[:, i1] * w.T[:, :, None]


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_onevision_bilinear_against_numpy(stride):
    x = _feats(2, OV_G)
    got = pool_frames(x, stride, ONEVISION, OV_G)
    side = math.ceil(OV_G / stride)
    for f in range(2):
        ref = _bilinear_oracle(x[f].double().numpy().reshape(OV_G, OV_G, -1), side).reshape(side * side, -1)
        np.testing.assert_allclose(got[f].double().numpy(), ref, atol=1e-5)


@pytest.mark.parametrize("family,g", [(ONEVISION, OV_G), (NEXT_VIDEO, NV_G)])
def test_pool_video_order_and_content(family, g):
    x = _feats(10, g)
    strides = frame_strides(10, PP, 2)
    got = pool_video(x, strides, family, g)
    per_frame = torch.cat([pool_frames(x[i : i + 1], s, family, g)[0] for i, s in enumerate(strides)])
    assert got.shape == per_frame.shape
    assert torch.equal(got, per_frame)
    n = visual_token_count(family, 10, PP, g, 2) - (1 if family == ONEVISION else 0)
    assert got.shape[0] == n


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        ({"mode": "adaptive"}, "pooling"),
        ({"mode": "progressive", "group": 0}, "pp_group"),
        ({"mode": "progressive", "high_stride": 0}, "pp_high_stride"),
        ({"mode": "progressive", "low_stride": 0}, "pp_low_stride"),
        ({"mode": "progressive", "high_stride": 8, "low_stride": 2}, "pp_high_stride"),
        ({"mode": "uniform"}, "pool_stride"),
        ({"mode": "uniform", "uniform_stride": 0}, "pool_stride"),
    ],
)
def test_validation_names_the_arg(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        PoolingSettings(**kwargs)


def test_stride_leaving_no_tokens_rejected_for_grid():
    with pytest.raises(ValueError, match="pool_stride"):
        PoolingSettings("uniform", uniform_stride=32).validate_for_grid(NEXT_VIDEO, NV_G)
    with pytest.raises(ValueError, match="pp_low_stride"):
        PoolingSettings("progressive", high_stride=2, low_stride=25).validate_for_grid(NEXT_VIDEO, NV_G)
    PoolingSettings("uniform", uniform_stride=32).validate_for_grid(ONEVISION, OV_G)  # ceil: 1 token left
    PP.validate_for_grid(NEXT_VIDEO, NV_G)
