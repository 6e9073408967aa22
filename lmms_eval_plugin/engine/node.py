"""The processes of one run talking to each other (`shard=video`), over the process group
that accelerate (or torchrun) already set up for lmms-eval.

- Descriptions and answers travel with `all_gather_object` on a gloo group of our own:
  they are small Python objects, and on an NCCL default group every object would be
  staged through GPU memory.
- A failure is published in the group's store (the rendezvous store every process
  already shares), and a process waiting for the others polls it instead of blocking in a
  collective. So a failed process stops the rest within one request (they check between
  requests) or one poll (while they wait for the answers), with its message naming the
  task and the doc, instead of leaving them in a collective until gloo's or NCCL's
  timeout. A process that dies without a word (killed, segfault) is caught by the
  launcher: torchrun / accelerate launch stop every process when one exits non-zero.
  The store is reached with torch's `_get_default_store` (torch has no public accessor;
  it is what torch's own store-based barrier uses).
"""

from __future__ import annotations

import time

from lmms_eval_plugin.failures.errors import FatalRunError

POLL_S = 0.5  # how often a waiting process looks for a peer's failure


class PeerFailedError(FatalRunError):
    """Another process of the run failed: this one stops too, repeating its message."""


class Node:
    def __init__(self, rank: int, world_size: int):
        import torch.distributed as dist

        self.dist = dist
        self.rank, self.world_size = rank, world_size
        # every process builds the model, so every process reaches this collective call
        self.group = dist.new_group(backend="gloo")
        self.store = dist.PrefixStore("lvu_ext_node/", dist.distributed_c10d._get_default_store())
        self.calls = 0  # request batches so far; lmms-eval hands each type to every process

    def all_gather(self, obj) -> list:
        gathered = [None] * self.world_size
        self.dist.all_gather_object(gathered, obj, group=self.group)
        return gathered

    def fail(self, message: str) -> None:
        """Tell the other processes this one is stopping (best effort: it is exiting anyway)."""
        try:
            if not self.store.check(["failed"]):
                self.store.set("failed", f"process {self.rank}: {message}")
        except Exception:  # the store itself may be gone
            pass

    def check_peers(self) -> None:
        """Raise PeerFailedError if another process has failed."""
        try:
            failed = self.store.check(["failed"])
            message = self.store.get("failed").decode() if failed else None
        except Exception as exc:  # the store lives on process 0: losing it means process 0 is gone
            message = f"lost contact with the run's store ({type(exc).__name__}: {exc})"
        if message is not None:
            raise PeerFailedError(f"lvu_ext: another process failed, stopping this one too: {message}")

    def wait_for_all(self, what: str) -> None:
        """Return once every process has reached this point (`what` names it); raise
        PeerFailedError as soon as one has failed."""
        tag = f"{self.calls}/{what}"
        self.store.set(f"{tag}/{self.rank}", "1")
        keys = [f"{tag}/{r}" for r in range(self.world_size)]
        while True:
            self.check_peers()
            if self.store.check(keys):
                return
            time.sleep(POLL_S)
