"""The video-affine assignment (shard=video) as a pure function of the processes'
descriptions: every process computes the same answer, a video never splits, the load is
balanced, and a process only gets tasks it holds a request of."""

from __future__ import annotations

import itertools
import random

from lmms_eval_plugin.engine.data_parallel import empty_answer, is_padding
from lmms_eval_plugin.engine.sharding import UNCAPPED_FPS_FRAMES, RequestDescription, assign, planned_frames
from lmms_eval_plugin.engine.video import FramePlan


def videomme_order(videos: int, questions: int, world: int, frames: int = 32, task: str = "videomme"):
    """Docs in Video-MME's order (a video's questions consecutive), dealt round-robin as
    lmms-eval's islice(docs, rank, None, world_size) deals them."""
    per_rank = {r: [] for r in range(world)}
    for doc_id in range(videos * questions):
        rank = doc_id % world
        video = (f"/data/v{doc_id // questions}.mp4", f"{frames} uniform")
        per_rank[rank].append(RequestDescription(rank, len(per_rank[rank]), task, "test", doc_id, 0, video, frames,
                                                 f"question {doc_id}", {"max_new_tokens": 8}, {}))
    return [d for r in range(world) for d in per_rank[r]]


def test_round_robin_splits_videos_and_assignment_regroups_them():
    descriptions = videomme_order(4, 3, world=3)
    # lmms-eval's own deal puts each video's 3 questions on 3 different processes
    for v in range(4):
        assert len({d.rank for d in descriptions if d.video[0] == f"/data/v{v}.mp4"}) == 3
    owner = assign(descriptions, 3)
    assert set(owner) == {d.origin for d in descriptions}
    for v in range(4):
        assert len({owner[d.origin] for d in descriptions if d.video[0] == f"/data/v{v}.mp4"}) == 1
    counts = sorted(sum(1 for d in descriptions if owner[d.origin] == r) for r in range(3))
    assert counts == [3, 3, 6]  # 4 equal videos over 3 processes: 2, 1, 1 videos


def test_same_assignment_whatever_order_the_descriptions_arrive_in():
    descriptions = videomme_order(7, 3, world=4)
    want = assign(descriptions, 4)
    rng = random.Random(0)
    for _ in range(5):
        shuffled = descriptions[:]
        rng.shuffle(shuffled)
        assert assign(shuffled, 4) == want


def test_longest_first_balances_the_load():
    # one long video (512 frames x 3) and six short ones (32 x 3): the long one alone on a process
    long = videomme_order(1, 3, world=2, frames=512)
    short = [RequestDescription(d.rank, d.index + 10, d.task, d.split, d.doc_id + 100, 0, ("/data/s" + d.video[0][-5:], "32 uniform"),
                                32, "", {}, {}) for d in videomme_order(6, 3, world=2)]
    owner = assign(long + short, 2)
    long_owner = {owner[d.origin] for d in long}
    assert len(long_owner) == 1
    assert not any(owner[d.origin] in long_owner for d in short)


def test_unknown_video_stays_with_its_process():
    d = RequestDescription(2, 99, "t", "test", 5, 0, None, 0, "", None, {})
    assert assign([d] + videomme_order(2, 3, world=3), 3)[d.origin] == 2


def test_a_process_gets_only_tasks_it_holds():
    # task b exists only on process 1; a video shared by tasks a and b can go nowhere whole
    a = [RequestDescription(0, 0, "a", "test", 0, 0, ("/v.mp4", "8 uniform"), 8, "", {}, {})]
    b = [RequestDescription(1, 0, "b", "test", 0, 0, ("/v.mp4", "8 uniform"), 8, "", {}, {}),
         RequestDescription(1, 1, "b", "test", 1, 0, ("/w.mp4", "8 uniform"), 8, "", {}, {})]
    owner = assign(a + b, 3)
    assert owner[(0, 0)] == 0 and owner[(1, 0)] == 1 and owner[(1, 1)] == 1
    assert 2 not in owner.values()


def test_every_video_whole_for_many_layouts():
    for videos, questions, world in itertools.product((1, 3, 8), (1, 3, 15), (2, 3, 8)):
        descriptions = videomme_order(videos, questions, world)
        owner = assign(descriptions, world)
        for v in range(videos):
            assert len({owner[d.origin] for d in descriptions if d.video[0] == f"/data/v{v}.mp4"}) == 1


def test_planned_frames_and_padding_helpers():
    assert planned_frames(FramePlan(num_frames=64)) == 64
    assert planned_frames(FramePlan(num_frames=None, fps=1.0, max_frames=512)) == 512
    assert planned_frames(FramePlan(num_frames=None, fps=1.0)) == UNCAPPED_FPS_FRAMES

    class Req:
        metadata = {"__padding_only__": True}

    assert is_padding(Req()) and not is_padding(object())
    assert empty_answer("generate_until") == "" and empty_answer("loglikelihood")[1] is False


def test_a_request_that_cannot_travel_stays_home():
    from lmms_eval.api.instance import Instance

    from lmms_eval_plugin.engine.data_parallel import describe

    def request(gen_kwargs):
        return Instance(request_type="generate_until", arguments=("Q", gen_kwargs, lambda doc: ["/v.mp4"], 3, "t", "test"),
                        idx=0, metadata={"task": "t", "doc_id": 3, "repeats": 1})

    job = ("/v.mp4", FramePlan(num_frames=8))
    assert describe(1, 0, request({"max_new_tokens": 4}), "generate_until", job, dict).video == ("/v.mp4", "8 uniform")
    stays = describe(1, 0, request({"max_new_tokens": 4, "hook": lambda x: x}), "generate_until", job, dict)
    assert stays.video is None and assign([stays], 3)[stays.origin] == 1
