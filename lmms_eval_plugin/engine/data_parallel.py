"""One request batch under data parallel: which requests this process answers, and the
answers back to the process lmms-eval gave each request to.

`shard=video`: describe (sharding.RequestDescription), gather every process's
descriptions, assign whole videos to processes (sharding.assign), answer what this
process was assigned (rebuilding requests that lmms-eval handed to another process),
then exchange the answers so each process returns exactly the answers to its own
requests, in lmms-eval's order. lmms-eval's gathering, scoring and samples files then
run untouched. `shard=harness` (and one process): answer lmms-eval's own share.

Either way the padding requests lmms-eval adds to even out the processes
(`__padding_only__` in their metadata; their answers are thrown away) cost no model work.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable

from loguru import logger

from lmms_eval_plugin.argv import use_cache_value
from lmms_eval_plugin.engine import reuse_summary
from lmms_eval_plugin.engine.sharding import RequestDescription, assign, planned_frames
from lmms_eval_plugin.model_args import ModelArgError

PADDING_KEY = "__padding_only__"


def open_node(setting: str, rank: int, world_size: int, argv: list[str]):
    """The Node that `shard=video` talks through, or None: each process answers lmms-eval's
    own share (one process, `shard=harness`, or `auto` beside lmms-eval's --use_cache)."""
    if world_size <= 1 or setting == "harness":
        return None
    if use_cache_value(argv):
        # Its ResponseCache skips the model call on a process whose answers are all cached,
        # and shard=video needs every process in every call.
        why = ("lmms-eval's --use_cache can skip the model call on a process whose answers are all cached, and "
               "shard=video needs every process in every call; resume with resume_journal=DIR instead")
        if setting == "video":
            raise ModelArgError(f"lvu_ext: model arg shard=video cannot run with --use_cache: {why}")
        logger.warning(f"lvu_ext: shard=auto answers lmms-eval's own share of the documents here (no reuse across "
                       f"processes): {why}")
        return None
    from lmms_eval_plugin.engine.node import Node

    return Node(rank, world_size)


def is_padding(request) -> bool:
    return bool((getattr(request, "metadata", None) or {}).get(PADDING_KEY))


def empty_answer(request_type: str):
    return "" if request_type == "generate_until" else (-math.inf, False)


def describe(rank: int, index: int, request, request_type: str, job, doc) -> RequestDescription:
    """A picklable description of `request`. `job`: its (video path, frame plan), or None
    when that cannot be told up front (the request then stays on its own process);
    `doc()`: its document, to turn a callable continuation into its text."""
    context, argument, _, doc_id, task, split = request.args
    # answered where it is: nothing else of it needs to travel
    stays = RequestDescription(rank, index, task, split, doc_id, request.idx, None, 0, "", None, {})
    if job is not None and request_type == "loglikelihood" and callable(argument):
        try:
            argument = argument(doc())
        except Exception:  # its own step reports this, on its own process
            job = None
    if job is None:
        return stays
    path, plan = job
    description = RequestDescription(rank, index, task, split, doc_id, request.idx, (path, plan.describe()),
                                     planned_frames(plan), context, argument, dict(request.metadata or {}))
    try:
        pickle.dumps(description)
    except Exception as exc:  # e.g. a callable in the generation kwargs: it cannot travel
        logger.warning(f"lvu_ext: shard=video: {task} doc {doc_id}: the request cannot be sent to another process "
                       f"({type(exc).__name__}: {exc}); it is answered where lmms-eval put it")
        return stays
    return description


def rebuild(description: RequestDescription, request_type: str, doc_to_visual):
    """The Instance of a request lmms-eval gave to another process, with this process's
    `doc_to_visual` of the same task (every process builds the same tasks)."""
    from lmms_eval.api.instance import Instance

    d = description
    return Instance(request_type=request_type, idx=d.idx, metadata=d.metadata,
                    arguments=(d.context, d.argument, doc_to_visual, d.doc_id, d.task, d.split))


def answer_harness_share(requests: list, request_type: str, answer_list: Callable) -> list:
    """lmms-eval's own share: every non-padding request, answered here."""
    real = [i for i, r in enumerate(requests) if not is_padding(r)]
    answers = answer_list([requests[i] for i in real], [None] * len(real))
    results = [empty_answer(request_type)] * len(requests)
    for i, answer in zip(real, answers):
        results[i] = answer
    return results


def answer_by_video(node, requests: list, request_type: str, video_job: Callable, doc_of: Callable,
                    answer_list: Callable, counters: Callable, args) -> list:
    """`shard=video` for one request batch. `video_job(request)`: (path, plan) or None;
    `doc_of(request)`: its document; `answer_list(requests, given_to)`: answers, in order;
    `counters()`: this process's reuse counters, summed over the node in the log."""
    node.calls += 1
    local = [describe(node.rank, i, r, request_type, video_job(r), lambda r=r: doc_of(r))
             for i, r in enumerate(requests) if not is_padding(r)]
    everyone = [d for part in node.all_gather(local) for d in part]
    owner = assign(everyone, node.world_size)
    mine = [d for d in everyone if owner[d.origin] == node.rank]
    visual_of_task = {r.args[4]: r.args[2] for r in requests}
    work = [requests[d.index] if d.rank == node.rank else rebuild(d, request_type, visual_of_task[d.task]) for d in mine]
    handed = sum(d.rank != node.rank for d in mine)
    logger.info(f"lvu_ext: shard=video: process {node.rank} answers {len(mine)} of {len(everyone)} {request_type} requests "
                f"({handed} handed over from other processes, {len({d.video for d in mine if d.video})} videos)")
    try:
        answers = answer_list(work, [d.rank for d in mine])
        node.wait_for_all(f"{request_type}/answered")
    except BaseException as exc:
        node.fail(str(exc) or type(exc).__name__)
        raise
    outbox = {d.origin: answer for d, answer in zip(mine, answers)}
    gathered = node.all_gather((outbox, counters()))
    inbox = {origin: answer for box, _ in gathered for origin, answer in box.items()}
    if node.rank == 0:
        node_wide = reuse_summary.summed([c for _, c in gathered])
        logger.info(f"lvu_ext: {request_type} done on all {node.world_size} processes; node-wide reuse so far: "
                    f"{reuse_summary.describe(node_wide, args)}")
    return [inbox[(node.rank, i)] if not is_padding(r) else empty_answer(request_type) for i, r in enumerate(requests)]
