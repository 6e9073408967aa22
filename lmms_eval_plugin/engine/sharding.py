"""Video-affine sharding (`shard=video`): which process answers which request.

lmms-eval deals documents round-robin over the processes (`islice(docs, rank, None,
world_size)`), and benchmarks list a video's questions as consecutive documents, so from
a few processes on every question of a video lands on another process and no cache can
hit. Here every process describes its requests, all processes see all descriptions, and
each computes the same assignment: all requests of one video (file + frame plan) to one
process, balanced by a longest-first greedy on planned frames x questions.

Pure functions of the descriptions: the collectives that carry them are in `node.py`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

# Frames assumed for a `fps` plan without `max_frames` (its count is only known once the
# video is opened): a load estimate, nothing else depends on it.
UNCAPPED_FPS_FRAMES = 256


@dataclass(frozen=True)
class RequestDescription:
    """Everything another process needs to answer a request, except `doc_to_visual`
    (a callable: the receiver takes its own, from a local request of the same task)."""

    rank: int  # the process lmms-eval gave the request to
    index: int  # its position in that process's request list
    task: str
    split: str
    doc_id: int
    idx: int
    video: tuple | None  # (path, frame plan description); None: not known up front
    frames: int  # planned frames, for the load estimate
    context: str
    argument: object  # generation kwargs (generate_until) or the continuation text (loglikelihood)
    metadata: dict

    @property
    def origin(self) -> tuple[int, int]:
        return self.rank, self.index

    def sort_key(self) -> tuple:
        return (self.task, self.split, str(self.doc_id), self.idx, self.rank, self.index)


def planned_frames(plan) -> int:
    if plan.num_frames is not None:
        return int(plan.num_frames)
    return int(plan.max_frames) if plan.max_frames else UNCAPPED_FPS_FRAMES


def assign(descriptions: list[RequestDescription], world_size: int) -> dict[tuple[int, int], int]:
    """{(origin rank, index): answering rank} for every description. Deterministic: every
    process computes the same dict from the same descriptions, whatever their order.

    A video group goes only to a process that holds a request of each of its tasks (there it
    finds the task's doc_to_visual); a group no process can take whole is split by task.
    Requests whose video is not known up front stay where lmms-eval put them."""
    ordered = sorted(descriptions, key=RequestDescription.sort_key)
    tasks_of_rank: dict[int, set] = defaultdict(set)
    for d in ordered:
        tasks_of_rank[d.rank].add(d.task)

    load = [0] * world_size
    owner: dict[tuple[int, int], int] = {}
    groups: dict[tuple, list[RequestDescription]] = {}
    for d in ordered:
        if d.video is None:
            owner[d.origin] = d.rank
            load[d.rank] += d.frames
        else:
            groups.setdefault(d.video, []).append(d)

    work: list[tuple[list[RequestDescription], list[int]]] = []
    for members in groups.values():
        tasks = {d.task for d in members}
        eligible = [r for r in range(world_size) if tasks <= tasks_of_rank[r]]
        if eligible:
            work.append((members, eligible))
            continue
        for task in sorted(tasks):  # no process holds all of them: one group per task
            part = [d for d in members if d.task == task]
            work.append((part, [r for r in range(world_size) if task in tasks_of_rank[r]]))

    # longest first; ties by the group's first request, so the order is the same everywhere
    work.sort(key=lambda item: (-_cost(item[0]), item[0][0].sort_key()))
    for members, eligible in work:
        chosen = min(eligible, key=lambda r: (load[r], r))
        load[chosen] += _cost(members)
        for d in members:
            owner[d.origin] = chosen
    return owner


def _cost(members: list[RequestDescription]) -> int:
    return max(d.frames for d in members) * len(members)
