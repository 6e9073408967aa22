"""One (case, frame count) measurement, the way a user runs it.

`stock` is the model-card recipe: decode the frames, `processor(text=..., videos=[frames])`,
`model.generate`. The lvu_ext cases go through the real `LvuExt.generate_until` with an
Instance shaped like lmms-eval's. Run as a module it measures one case in a fresh
process (CPU peak RSS = this process's ru_maxrss at the end, nothing subtracted) and
writes the result as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import traceback
from dataclasses import asdict, dataclass

import torch

from lmms_eval_plugin.bench.memory.cases import CONTEXT, LVU_CASES, STOCK
from lmms_eval_plugin.bench.memory.measure import FirstTokenTimer, MemoryProbe, is_oom

# Not imported from lvu_ext: the stock case must not pay for importing lmms-eval.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
WARMUP_FRAMES = 2


@dataclass
class CaseSpec:
    case: str
    frames: int
    model_dir: str
    video: str
    device: str = "cpu"
    dtype: str = "float32"
    max_new_tokens: int = 8
    warmup: bool = True
    fresh_process: bool = True
    build: bool = False  # model_dir holds only config + processor: build random weights on `device`


def _stock_once(model, processor, spec: CaseSpec, n_frames: int, max_new_tokens: int, timer=None):
    from lmms_eval_plugin.engine.video import FramePlan, load_video

    if timer:
        timer.start()
    frames = load_video(spec.video, FramePlan(n_frames), reader="sequential").frames
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": CONTEXT}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=prompt, videos=[frames], return_tensors="pt").to(spec.device, DTYPES[spec.dtype])
    del frames
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    n_prompt = inputs["input_ids"].shape[1]
    visual = int((inputs["input_ids"] == model.config.video_token_id).sum())
    return out[0, n_prompt:].tolist(), visual, n_prompt


def _request(lm, video: str, doc_id: int, gen_kwargs: dict):
    """An Instance as lmms-eval's ConfigurableTask builds it (see tests/conftest.py)."""
    from lmms_eval.api.instance import Instance

    lm.task_dict.setdefault("bench", {"test": {}})["test"][doc_id] = {"video": video}
    meta = {"task": "bench", "doc_id": doc_id, "repeats": 1, "split": "test"}
    args = (CONTEXT, dict(gen_kwargs), lambda doc: [doc["video"]], doc_id, "bench", "test")
    return Instance(request_type="generate_until", arguments=args, idx=0, metadata=meta)


@contextlib.contextmanager
def _model_source(prebuilt):
    """Let LvuExt take an in-memory model (random 7B built on the GPU) instead of
    loading weights; everything else in its constructor runs as for a user."""
    if prebuilt is None:
        yield
        return
    from unittest import mock

    with mock.patch.object(type(prebuilt), "from_pretrained", lambda *a, **k: prebuilt):
        yield


class _GenerateSpy:
    """Wraps the model's `generate` (instance attribute, removed afterwards) to keep the
    generated token ids and the visual token count of the call lvu_ext makes."""

    def __init__(self, model):
        self.model, self.original = model, model.generate
        self.new_tokens, self.visual, self.prompt = None, None, None
        model.generate = self

    def __call__(self, *args, **kwargs):
        out = self.original(*args, **kwargs)
        ids = kwargs["input_ids"]
        self.prompt = int(ids.shape[1])
        self.visual = int((ids == self.model.config.video_token_id).sum())
        self.new_tokens = out[0, self.prompt :].tolist()
        return out

    def remove(self):
        del self.model.generate


def run_case(spec: CaseSpec, prebuilt=None) -> dict:
    """Measure one case; `prebuilt` is an in-memory model to use instead of loading one."""
    result = {"case": spec.case, "frames": spec.frames, "status": "ok", "peak_mem_gb": None, "baseline_mem_gb": None,
              "prefill_s": None, "ttft_s": None, "total_s": None, "visual_tokens": None, "prompt_tokens": None, "new_tokens": None,
              "prefill_logit_rows": None, "prefill_logits_sha": None, "peak_before_lm_gb": None, "error": None}
    probe = MemoryProbe(spec.device, spec.fresh_process)
    timer = lm = model = None
    try:
        if spec.build and prebuilt is None:
            from lmms_eval_plugin.bench.archs import build_on_device

            prebuilt = build_on_device(spec.model_dir, spec.device, DTYPES[spec.dtype])
        if spec.case == STOCK:
            from transformers import (
                AutoProcessor,
                LlavaOnevisionForConditionalGeneration,
            )

            processor = AutoProcessor.from_pretrained(spec.model_dir)
            # Users call generate bare (it runs under no_grad itself).
            model = prebuilt if prebuilt is not None else LlavaOnevisionForConditionalGeneration.from_pretrained(
                spec.model_dir, dtype=DTYPES[spec.dtype], device_map=spec.device
            ).eval()
            result["baseline_mem_gb"] = probe.baseline()
            if spec.warmup:
                _stock_once(model, processor, spec, WARMUP_FRAMES, 1)
            probe.watch_lm(model)
            probe.start()
            timer = FirstTokenTimer(model)
            tokens, visual, prompt = _stock_once(model, processor, spec, spec.frames, spec.max_new_tokens, timer)
        else:
            from lmms_eval_plugin.model_args import valid_keys
            from lmms_eval_plugin.models.lvu_ext import LvuExt

            args = dict(pretrained=spec.model_dir, device=spec.device, dtype=spec.dtype, num_frames=spec.frames,
                        **LVU_CASES[spec.case])
            if "resume_journal" in valid_keys():  # every case must really run, never replay a journaled answer
                args["resume_journal"] = "off"
            with _model_source(prebuilt):
                lm = LvuExt(**args)
            model = lm.model
            result["baseline_mem_gb"] = probe.baseline()
            if spec.warmup:
                lm.generate_until([_request(lm, spec.video, 1, {"max_new_tokens": 1, "num_frames": WARMUP_FRAMES})])
            probe.watch_lm(model)
            probe.start()
            spy, timer = _GenerateSpy(model), FirstTokenTimer(model)
            try:
                timer.start()
                lm.generate_until([_request(lm, spec.video, 0, {"max_new_tokens": spec.max_new_tokens, "temperature": 0})])
            finally:
                spy.remove()
            tokens, visual, prompt = spy.new_tokens, spy.visual, spy.prompt
        result.update(total_s=timer.elapsed(), prefill_s=timer.prefill, ttft_s=timer.ttft, prefill_logit_rows=timer.logit_rows,
                      prefill_logits_sha=timer.logits_sha,
                      visual_tokens=visual, prompt_tokens=prompt, new_tokens=tokens)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["status"] = "OOM" if is_oom(exc) else "error"
        result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        if result["status"] == "error":
            traceback.print_exc()
    finally:
        if timer is not None:
            timer.close()
        probe.close()
    result["peak_mem_gb"] = probe.peak()
    result["peak_before_lm_gb"] = probe.before_lm
    del lm, model, prebuilt  # free this case's model (a caller's prebuilt one stays alive in the caller)
    gc.collect()
    if spec.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="one benchmark case in this process (used by lvu-ext bench)")
    parser.add_argument("--spec", required=True, help="CaseSpec as JSON")
    parser.add_argument("--result", required=True, help="where to write the result JSON")
    ns = parser.parse_args(argv)
    spec = CaseSpec(**json.loads(ns.spec))
    result = run_case(spec)
    with open(ns.result, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


def spec_json(spec: CaseSpec) -> str:
    return json.dumps(asdict(spec))


if __name__ == "__main__":
    sys.exit(main())
