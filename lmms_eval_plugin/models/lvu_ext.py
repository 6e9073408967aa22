"""`lvu_ext`: LLaVA-OneVision / LLaVA-NeXT-Video (transformers) for long videos, with
the visual context window extension and progressive pooling of METHOD.md.

With `rope_ext=none,pooling=native` it is the stock transformers model: same frames,
same prompt, same visual tokens, same `generate`.
"""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass, replace

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from loguru import logger as eval_logger
from tqdm import tqdm

from lmms_eval_plugin.bookkeeping.records import RequestRecorder, default_record_path
from lmms_eval_plugin.bookkeeping.resume import ResumeSession
from lmms_eval_plugin.bookkeeping.run_manifest import open_manifest
from lmms_eval_plugin.checkpoints.families import Family, detect_family, grid_side, native_stride
from lmms_eval_plugin.checkpoints.tiny_models import resolve_pretrained
from lmms_eval_plugin.engine import peak_memory, reuse_summary
from lmms_eval_plugin.engine.data_parallel import answer_by_video, answer_harness_share, open_node
from lmms_eval_plugin.engine.frame_source import FrameSource
from lmms_eval_plugin.engine.prefix_cache import PrefixCache, prefix_kv
from lmms_eval_plugin.engine.prompting import build_prompt, prompt_ids
from lmms_eval_plugin.engine.request_plan import check_requests, frame_plan_for, split_generation_kwargs, video_job, video_path
from lmms_eval_plugin.engine.scheduling import run_grouped
from lmms_eval_plugin.engine.settings import pooling_settings_from, rope_settings_from
from lmms_eval_plugin.engine.video import VideoError
from lmms_eval_plugin.engine.video_cache import VideoFeatureCache, VideoKey
from lmms_eval_plugin.engine.visual_encoding import encode_video, expand_video_token
from lmms_eval_plugin.failures.errors import FatalRunError, ModelArgExit
from lmms_eval_plugin.failures.memory_advice import MemoryAdvisor, describe_pooling
from lmms_eval_plugin.failures.request_guard import guard_request, guarded_batch
from lmms_eval_plugin.failures.video_failure import video_failed
from lmms_eval_plugin.method.pooling import frame_strides, visual_token_count
from lmms_eval_plugin.method.rope_scaling import check_checkpoint_rope, compute_rope_override
from lmms_eval_plugin.model_args import ModelArgError, check_pretrained_exists, parse_model_args, repeated_keys
from lmms_eval_plugin.patches.rope_window import rope_override

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass
class PreparedVideo:
    features: torch.Tensor  # (1, tokens, D)
    record: dict  # the video's part of the per-request record
    override: object  # RopeOverride for this request's visual token count
    key: VideoKey | None = None  # video cache / prefix cache key


class LvuExt(lmms):
    is_simple = True

    def __init__(self, **kwargs) -> None:
        super().__init__()
        args = parse_model_args(**kwargs)  # every arg checked before any weight is loaded
        self.args = args
        # Validated now, before the checkpoint is touched; the family's default visual
        # window is filled in once the config says which family this is.
        self.rope_settings = rope_settings_from(args, None)
        self.pooling_settings = pooling_settings_from(args)

        import transformers
        from accelerate import Accelerator
        from transformers import AutoConfig, AutoProcessor

        check_pretrained_exists(args.pretrained)
        pretrained = resolve_pretrained(args.pretrained)
        config = AutoConfig.from_pretrained(pretrained, revision=args.revision, trust_remote_code=args.trust_remote_code)
        self.family: Family = detect_family(config)
        if args.visual_window is None:
            self.rope_settings = rope_settings_from(args, self.family.visual_window)
        check_checkpoint_rope(config.text_config, self.rope_settings)
        try:
            self.pooling_settings.validate_for_grid(self.family.model_type, grid_side(config))
        except ValueError as exc:
            raise ModelArgError(f"lvu_ext: {exc}") from None

        accelerator = Accelerator()
        self.accelerator = accelerator
        self._rank, self._world_size = accelerator.process_index, accelerator.num_processes
        self.node = open_node(args.shard, self.rank, self.world_size, sys.argv)  # None: lmms-eval's own share
        if args.device_map == "auto":
            device_map, device = "auto", None
        else:
            device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
            if accelerator.num_processes > 1 and torch.cuda.is_available():
                device = f"cuda:{accelerator.local_process_index}"
            device_map = args.device_map or device
        dtype = "auto" if args.dtype == "auto" else DTYPES[args.dtype]

        self.processor = AutoProcessor.from_pretrained(pretrained, revision=args.revision, trust_remote_code=args.trust_remote_code)
        self.frames = FrameSource(args, self.processor.video_processor)  # decode workers start while the weights load
        model_cls = getattr(transformers, self.family.model_class)
        self._model = model_cls.from_pretrained(
            pretrained,
            revision=args.revision,
            dtype=dtype,
            device_map=device_map,
            attn_implementation=args.attn_implementation,
            trust_remote_code=args.trust_remote_code,
            use_safetensors=None,  # prefer safetensors, fall back to .bin only when that is all there is
        ).eval()
        self.tokenizer = self.processor.tokenizer
        self._device = self._model.get_input_embeddings().weight.device
        self.native_stride = native_stride(config, self.family)
        self.memory = MemoryAdvisor(self.family.model_type, grid_side(config), self.native_stride, self.pooling_settings,
                                    args.vision_batch, self._model.dtype == torch.float32)
        self.recorder = RequestRecorder(args.record_path or default_record_path(), self.rank, self.world_size)
        self.manifest = open_manifest(args, sys.argv, pretrained, self._model, self._device, self.rank, self.world_size, self.recorder)
        self._short_warned, self._warned_kwargs = False, set()
        self._checkpoint_id = f"{pretrained}@{args.revision}"
        self.video_cache = VideoFeatureCache(args.video_cache)
        self.prefix_cache = PrefixCache(args.prefix_cache)
        self._prefetcher = None  # the frame source's prefetcher of the batch being answered
        self.frames.vision_dtype = self._model.model.vision_tower.dtype
        self._video_continues = False  # the next request in the grouped order asks about the same video
        self.last_video: PreparedVideo | None = None  # the video of the latest request (tests, debugging)
        self.resume = ResumeSession.open(args, sys.argv, self.rank, self.recorder)
        self.journal = self.resume.journal
        eval_logger.info(
            f"lvu_ext: {args.pretrained} ({self.family.model_type}) on {self._device}, rope_ext={self.rope_settings.variant} "
            f"(L_train={self.rope_settings.visual_window}), pooling={describe_pooling(self.pooling_settings)}, "
            f"rank {self.rank}/{self.world_size}"
        )

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None):
        # The harness's way in (--model_args): it would swallow a ValueError and exit 0.
        try:
            if repeated_keys(arg_string):  # the harness would keep the last value silently
                raise ModelArgError(f"lvu_ext: model arg(s) given more than once: {', '.join(repeated_keys(arg_string))}")
            return super().create_from_arg_string(arg_string, additional_config)
        except ModelArgError as exc:
            raise ModelArgExit(str(exc)) from None
        except Exception as exc:  # a missing checkpoint, an unsupported architecture, ...
            eval_logger.exception("lvu_ext: the model could not be built")
            raise FatalRunError(f"lvu_ext: the model could not be built: {type(exc).__name__}: {exc}") from None

    # ---- lmms-eval plumbing -----------------------------------------------------
    @property
    def model(self):
        return self._model

    @property
    def device(self):
        return self._device

    @property
    def batch_size(self):
        return 1

    @property
    def eot_token_id(self):
        return self.tokenizer.eos_token_id

    def _doc(self, task, split, doc_id):
        return self.task_dict[task][split][doc_id]

    # ---- one video ---------------------------------------------------------------
    def _video_path(self, doc_to_visual, doc_id, task, split) -> str:
        return video_path(lambda: doc_to_visual(self._doc(task, split, doc_id)))

    def _video_key(self, path: str, plan) -> VideoKey | None:
        # everything the pooled features depend on: file, frame plan, pooling, checkpoint
        return VideoKey.of(path, plan.describe(), repr(self.pooling_settings), self._checkpoint_id)

    def _prepare_video(self, plan, doc_to_visual, doc_id, task, split) -> PreparedVideo:
        """The request's video (features, RoPE override, its record with task, doc id and
        `video_cache_hit`): from the video cache, or decoded (maybe in the background) and encoded."""
        path = self._video_path(doc_to_visual, doc_id, task, split)
        key = self._video_key(path, plan)
        prepared = self.video_cache.get(key)
        hit = prepared is not None
        if not hit:
            prepared = self._encode_video(path, plan, key, task, doc_id)
            self.video_cache.put(key, prepared)
        elif self._prefetcher is not None:
            self._prefetcher.discard((path, plan))
        self.last_video = prepared
        # a cached video's frames were not waited for again
        return replace(prepared, record={"task": task, "doc_id": doc_id, **prepared.record, "video_cache_hit": hit, **({"wait_s": 0.0} if hit else {})})

    def _encode_video(self, path: str, plan, key, task, doc_id) -> PreparedVideo:
        job = (path, plan)
        video = self._prefetcher.take(job, job)  # decoded (and preprocessed, by a worker) ahead, or now
        wait_s = self.frames.took(self._prefetcher)  # how long the model waited for these frames
        if video.short:
            if not self._short_warned:
                eval_logger.warning(
                    f"lvu_ext: {task} doc {doc_id}: {path} has {video.total_frames} frames, fewer than the "
                    f"{video.requested} requested; using all of them (said once per run; see frames_sampled per request)"
                )
                self._short_warned = True
        strides = frame_strides(len(video.indices), self.pooling_settings, self.native_stride)
        n_visual = visual_token_count(
            self.family.model_type, len(video.indices), self.pooling_settings, grid_side(self.model.config), self.native_stride
        )
        with self.memory.guard(task, doc_id, "in the vision tower", len(video.indices), n_visual), torch.inference_mode():
            features = encode_video(self.model, self.processor, self.family, video.frames, strides, self.args.vision_batch, video.pixels)
        assert features.shape[1] == n_visual, (features.shape, n_visual)
        override = compute_rope_override(self.model.config.text_config, self.rope_settings, n_visual)
        record = dict(
            frame_plan=plan.describe(), video=path, frames_requested=video.requested, frames_sampled=len(video.indices),
            video_total_frames=video.total_frames, decoder=video.backend, frame_cache=video.frame_cache, wait_s=round(wait_s, 3), visual_tokens=n_visual,
            rope_ext=self.rope_settings.variant, rope_base=self.rope_settings.base, s=round(override.s, 6), rope_applied=override.inv_freq is not None,
            attention_scaling=round(override.attention_scaling, 6), visual_window=self.rope_settings.visual_window,
            pooling=self.pooling_settings.mode, pooling_settings=describe_pooling(self.pooling_settings),
        )
        return PreparedVideo(features, record, override, key)

    def _input_ids(self, prompt_text: str, n_visual: int) -> list[int]:
        ids = prompt_ids(self.tokenizer, prompt_text)  # BOS exactly as the processor adds it
        return expand_video_token(ids, self.model.config.video_token_id, n_visual)

    # ---- resume journal (resume.py) -------------------------------------------------
    def _journal_or_video(self, key, plan, doc_to_visual, doc_id, task, split):
        """(answer on record, None) when resuming; else (None, prepared video), or (None, None)
        when the video failed (already recorded and logged)."""
        answer = self.resume.recall(key)
        if answer is not None:
            return answer, None
        try:
            return None, self._prepare_video(plan, doc_to_visual, doc_id, task, split)
        except VideoError as exc:
            video_failed(self.recorder, task, doc_id, exc, self.args.on_video_error)
            return None, None

    # ---- requests ----------------------------------------------------------------
    @guarded_batch("generate_until")  # a failure outside any one request still ends the run non-zero
    def generate_until(self, requests: list[Instance]) -> list[str]:
        return self._answer_all(requests, "generate_until", self._generate_request)

    @guarded_batch("loglikelihood")  # a failure outside any one request still ends the run non-zero
    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        return self._answer_all(requests, "loglikelihood", self._loglikelihood_request)

    def _answer_all(self, requests: list[Instance], request_type: str, answer_request) -> list:
        """Answer lmms-eval's requests: this process's own share, or under `shard=video` the
        whole videos assigned to it, answers exchanged (data_parallel.py)."""
        check_requests(requests, request_type, self.eot_token_id, self.args, self._warned_kwargs)  # before any work
        self.manifest.add_tasks(requests, self.args)  # lvu_ext_run.json: each task's frame plan and YAML hash

        def answer_list(work: list, given_to: list) -> list:
            return self._answer_list(work, given_to, request_type, answer_request)

        if self.node is None:
            return answer_harness_share(requests, request_type, answer_list)
        return answer_by_video(self.node, requests, request_type, lambda r: self._video_job(r, request_type),
                               lambda r: self._doc(r.args[4], r.args[5], r.args[3]), answer_list, self._reuse_counters, self.args)

    def _answer_list(self, requests: list, given_to: list, request_type: str, answer_request) -> list:
        """Answer every request with `answer_request`, the questions of one video back to
        back while the next videos decode in the background (scheduling.py, prefetch.py);
        the answers come back in the input order. `given_to[i]`: the process lmms-eval gave
        request i to (None: this one), for its record."""
        jobs = [self._video_job(request, request_type) for request in requests]

        def answer(index: int, video_continues: bool):
            if self.node is not None:
                self.node.check_peers()  # another process failed: stop now, not at the exchange
            self._video_continues = video_continues
            self.recorder.extra = {"process": self.rank, "given_to": self.rank if given_to[index] is None else given_to[index]}
            return answer_request(requests[index])

        with self.frames.session() as prefetcher:
            self._prefetcher = prefetcher
            try:
                answers = run_grouped(jobs, answer, prefetcher, cached=lambda job: self._video_key(*job) in self.video_cache,
                                      progress=lambda it: tqdm(it, disable=(self.rank != 0), desc=f"lvu_ext {request_type}"))
            finally:
                self._prefetcher = None
        self.resume.log_resumed(sum(from_journal for _, from_journal in answers), len(requests), request_type)
        self.recorder.log_failures()
        self._summarise_reuse(request_type)
        return [result for result, _ in answers]

    def _video_job(self, request: Instance, request_type: str):
        return video_job(request, request_type, self.eot_token_id, self.args, self._video_path)

    def _reuse_counters(self) -> dict:
        return reuse_summary.counters(self.video_cache, self.prefix_cache, self.frames)

    def _summarise_reuse(self, request_type: str) -> None:
        eval_logger.info(f"lvu_ext: {request_type} done; reuse so far: {reuse_summary.describe(self._reuse_counters(), self.args)}")

    def _generate_request(self, request: Instance) -> tuple[str, bool]:
        """One generate_until request: (answer, whether it came from the resume journal)."""
        context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
        with guard_request(task, doc_id, self.journal, self.recorder):  # any failure ends the run non-zero
            peak_memory.reset(self.device)
            generate_kwargs, until, overrides = split_generation_kwargs(copy.deepcopy(gen_kwargs), self.eot_token_id)
            plan = frame_plan_for(request, overrides, self.args)
            # sampled answers are not journaled: the harness does not cache them either
            content = [context, gen_kwargs, plan.describe()]
            key = None if generate_kwargs["do_sample"] else self.resume.key(request, "generate_until", content)
            answer, prepared = self._journal_or_video(key, plan, doc_to_visual, doc_id, task, split)
            if answer is not None:
                return answer, True
            if prepared is None:  # the video failed: an empty answer, scored as wrong
                return "", False
            text, record = self._generate_one(task, doc_id, context, prepared, generate_kwargs, until)
            self.resume.answered(key, text, record)
            return text, False

    def _prefix_kv(self, prepared: PreparedVideo, ids: list[int], input_ids: torch.Tensor, needed_after: int = 1):
        return prefix_kv(self.model, self.prefix_cache, prepared.key, ids, input_ids, prepared.features,
                         self.args.prefill_chunk, self._video_continues, needed_after)

    def _generate_one(self, task, doc_id, context: str, prepared: PreparedVideo, generate_kwargs: dict, until: list[str]):
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        n_visual = prepared.features.shape[1]
        ids_list = self._input_ids(build_prompt(self.processor, context, self.args.system_prompt), n_visual)
        ids = torch.tensor([ids_list], device=self.device)
        frames = prepared.record["frames_sampled"]
        with self.memory.guard(task, doc_id, "in generate", frames, n_visual), torch.inference_mode(), \
                rope_override(self.model, prepared.override):
            cache, prefix_hit = self._prefix_kv(prepared, ids_list, ids)
            # one pass (the stock path) or the question on top of the video prefix's KV cache
            inputs = {"cache": cache} if cache is not None else \
                {"mm_encoder_outputs": {"video": BaseModelOutputWithPooling(pooler_output=prepared.features)}}
            out = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id,
                **inputs,
                **generate_kwargs,
            )
            del cache, inputs
        new_tokens = out[0, ids.shape[1] :]
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        for stop in until:
            if stop and stop in text:
                text = text.split(stop)[0]
        record = dict(prepared.record, prefix_cache_hit=prefix_hit, status="ok", prompt_tokens=int(ids.shape[1]),
                      new_tokens=int(new_tokens.numel()), **peak_memory.record_field(self.device))
        eval_logger.info("lvu_ext request: " + ", ".join(f"{k}={v}" for k, v in record.items() if k != "video"))
        return text, record

    def _loglikelihood_request(self, request: Instance) -> tuple[tuple[float, bool], bool]:
        """One loglikelihood request: ((log P(continuation), greedy?), from the resume journal?)."""
        context, continuation, doc_to_visual, doc_id, task, split = request.args
        with guard_request(task, doc_id, self.journal, self.recorder):  # any failure ends the run non-zero
            peak_memory.reset(self.device)
            if callable(continuation):
                continuation = continuation(self._doc(task, split, doc_id))
            plan = frame_plan_for(request, {}, self.args)
            key = self.resume.key(request, "loglikelihood", [context, str(continuation), plan.describe()])
            answer, prepared = self._journal_or_video(key, plan, doc_to_visual, doc_id, task, split)
            if answer is not None:
                return tuple(answer), True
            if prepared is None:  # the video failed: the continuation gets no probability
                return (-math.inf, False), False
            result, record = self._score_continuation(task, doc_id, context, str(continuation), prepared)
            self.resume.answered(key, list(result), record)
            return result, False

    def _score_continuation(self, task, doc_id, context: str, continuation: str, prepared: PreparedVideo):
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        n_visual = prepared.features.shape[1]
        prompt = build_prompt(self.processor, context, self.args.system_prompt)
        context_ids = self._input_ids(prompt, n_visual)
        full_ids = self._input_ids(prompt + continuation, n_visual)
        cont_ids = full_ids[len(context_ids) :]
        if not cont_ids or full_ids[: len(context_ids)] != context_ids:
            raise ValueError(f"continuation {continuation!r} does not tokenize after the prompt")
        ids = torch.tensor([full_ids], device=self.device)
        keep = len(cont_ids) + 1  # only the positions that predict the continuation
        with self.memory.guard(task, doc_id, "in the forward pass", prepared.record["frames_sampled"], n_visual), \
                torch.inference_mode(), rope_override(self.model, prepared.override):
            cache, prefix_hit = self._prefix_kv(prepared, full_ids, ids, needed_after=keep)
            if cache is None:
                inputs = {"input_ids": ids, "use_cache": False,
                          "mm_encoder_outputs": {"video": BaseModelOutputWithPooling(pooler_output=prepared.features)}}
            else:  # the tokens after the video prefix, on a copy of its KV cache
                inputs = {"input_ids": ids[:, cache.get_seq_length():], "cache": cache, "use_cache": True}
            logits = self.model(attention_mask=torch.ones_like(ids), logits_to_keep=keep, **inputs).logits[0, :-1].float()
            del cache, inputs
        target = torch.tensor(cont_ids, device=logits.device)
        logprobs = torch.log_softmax(logits, dim=-1)
        total = float(logprobs.gather(-1, target[:, None]).sum())
        greedy = bool((logits.argmax(-1) == target).all())
        record = dict(prepared.record, prefix_cache_hit=prefix_hit, status="ok", request="loglikelihood",
                      continuation_tokens=len(cont_ids), **peak_memory.record_field(self.device))
        return (total, greedy), record

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError(
            "lvu_ext answers one question per video (generate_until, loglikelihood); multi-round tasks are not supported"
        )
