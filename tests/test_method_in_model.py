"""The method inside the model class: per-request, reversible, and exact where it
should reduce to the stock model or to transformers' own YaRN."""

import json
import shutil

import pytest
import torch
import transformers
from transformers import AutoProcessor

from conftest import FAMILIES, make_lm, make_request, write_video
from lmms_eval_plugin.patches.rope_window import rotary_modules
from video_fixtures import sampled_frames_plainly

CONTEXT = "Which way does the block move?\nA. left\nB. right\nAnswer with the option's letter."
GEN = {"max_new_tokens": 12, "temperature": 0}


def answer(lm, video, metadata=None, doc_id=0):
    return lm.generate_until([make_request(lm, str(video), CONTEXT, GEN, metadata=metadata, doc_id=doc_id)])[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_progressive_with_native_strides_is_the_baseline(family, tiny_checkpoints, sample_video):
    ckpt = tiny_checkpoints[family]
    baseline = answer(make_lm(ckpt, num_frames=10), sample_video)
    progressive = make_lm(ckpt, num_frames=10, pooling="progressive", pp_high_stride=2, pp_low_stride=2, pp_group=4)
    assert answer(progressive, sample_video) == baseline
    # and a real progressive setting does change the visual tokens the model sees
    changed = make_lm(ckpt, num_frames=10, pooling="progressive")
    answer(changed, sample_video)
    assert changed.last_video.features.shape[1] < progressive.last_video.features.shape[1]


def test_short_request_after_long_one_gets_stock_rope(tiny_checkpoints, tmp_path):
    ckpt = tiny_checkpoints["llava_onevision"]
    long_video = write_video(tmp_path / "long.mp4", n_frames=260, size=(64, 48), fps=25)
    short_video = write_video(tmp_path / "short.mp4", n_frames=40, seed=3)
    # rope_ext=none with the same pooling: only the RoPE setting differs from fresh_vcwe below
    fresh = answer(make_lm(ckpt, pooling="progressive"), short_video, metadata={"lvu_num_frames": 32})

    lm = make_lm(ckpt, rope_ext="vcwe", pooling="progressive")
    stock = [m.inv_freq.clone() for m in rotary_modules(lm.model)]
    fresh_vcwe = answer(make_lm(ckpt, rope_ext="vcwe", pooling="progressive"), short_video, metadata={"lvu_num_frames": 32})
    answer(lm, long_video, metadata={"lvu_num_frames": 256}, doc_id=1)
    long_record = lm.last_video.record
    assert long_record["frames_sampled"] == 256 and long_record["visual_tokens"] == 15617
    assert long_record["rope_applied"] and long_record["s"] == pytest.approx(15617 / 6272, abs=1e-6)
    # after the long request the frequencies are the stock ones again, bit for bit
    assert all(torch.equal(a, m.inv_freq) for a, m in zip(stock, rotary_modules(lm.model)))
    assert answer(lm, short_video, metadata={"lvu_num_frames": 32}, doc_id=2) == fresh_vcwe
    # a 32-frame request is below the visual window (s <= 1): vcwe changes nothing at all
    assert fresh_vcwe == fresh


def test_rope_ext_yarn_equals_transformers_yarn_checkpoint(tiny_checkpoints, sample_video, tmp_path):
    """Full model path: lvu_ext(rope_ext=yarn, factor s, window L) answers exactly what
    transformers gives when the same checkpoint is loaded with rope_parameters type yarn."""
    s, window = 3.0, 512
    ckpt = tiny_checkpoints["llava_onevision"]
    lm = make_lm(ckpt, num_frames=8, rope_ext="yarn", rope_factor=s, visual_window=window)
    ours = answer(lm, sample_video)

    yarn_ckpt = tmp_path / "yarn"
    shutil.copytree(ckpt, yarn_ckpt)
    cfg = json.loads((yarn_ckpt / "config.json").read_text())
    text = cfg["text_config"]  # the hub's spelling: rope_theta + rope_scaling (tiny_models mirrors it)
    theta = text.pop("rope_theta")
    text.pop("rope_scaling", None)
    text["rope_parameters"] = {"rope_type": "yarn", "factor": s, "original_max_position_embeddings": window, "rope_theta": theta}
    (yarn_ckpt / "config.json").write_text(json.dumps(cfg))
    model = transformers.LlavaOnevisionForConditionalGeneration.from_pretrained(yarn_ckpt).eval()
    assert model.model.language_model.rotary_emb.rope_type == "yarn"
    processor = AutoProcessor.from_pretrained(yarn_ckpt)
    frames = sampled_frames_plainly(sample_video, 8)
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": CONTEXT}]}], add_generation_prompt=True, tokenize=False
    )
    inputs = processor(text=prompt, videos=[frames], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    expected = processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert ours == expected
    # the override really was active (not a no-op that happens to agree)
    override = lm.last_video.override
    assert lm.last_video.record["rope_applied"]
    assert not torch.equal(override.inv_freq, rotary_modules(lm.model)[0].inv_freq)


def test_frame_count_channel_beats_model_arg(tiny_checkpoints, sample_video):
    lm = make_lm(tiny_checkpoints["llava_next_video"], num_frames=4)
    answer(lm, sample_video, metadata={"lvu_num_frames": 6})
    assert lm.last_video.record["frames_sampled"] == 6
    answer(lm, sample_video, doc_id=1)  # task says nothing: the model arg decides
    assert lm.last_video.record["frames_sampled"] == 4
    lm.generate_until([make_request(lm, str(sample_video), CONTEXT, dict(GEN, num_frames=5), doc_id=2)])
    assert lm.last_video.record["frames_sampled"] == 5  # gen_kwargs consumed, not passed to generate
