"""The reproduce process and its lmms-eval child live and die together, and one output
folder has one reproduce at a time.

- The child runs in its own process group (Ctrl-C in a terminal reaches the parent only;
  the parent stops the whole group: `accelerate launch` and its workers) and, on Linux,
  gets SIGTERM when the parent dies, even by SIGKILL (prctl PR_SET_PDEATHSIG).
- DIR/.reproduce.lock is flock'ed for the run and holds the pid. The kernel drops the lock
  when the process ends, however it ends, so a lock left by a dead command is never in
  the way (its child follows it within moments, by the parent-death signal).
- SIGINT and SIGTERM raise Interrupted, which the CLI turns into one line and 128 + signal."""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

LOCK_FILE = ".reproduce.lock"
_PR_SET_PDEATHSIG = 1


class Interrupted(BaseException):
    """SIGINT / SIGTERM: a BaseException so that no `except Exception` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class FolderBusy(RuntimeError):
    """Another reproduce (or its lmms-eval child) is running into this output folder."""


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def catch_interrupts() -> None:
    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)


def lock_folder(out: Path) -> int:
    """Hold DIR's lock for the life of this process (and its children); FolderBusy if held."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
        os.close(fd)
        alive = holder.isdigit() and _alive(int(holder))
        who = f"lvu-ext reproduce (pid {holder})" if alive else f"an lvu-ext reproduce that is ending (pid {holder or '?'})"
        raise FolderBusy(f"{out} is in use by {who}: wait for it or stop it, then run this command again") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent(parent: int) -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def start_child(argv: list[str], stdout) -> subprocess.Popen:
    parent = os.getpid()  # the lock's descriptor is not inherited (close_fds): the lock is this process's
    return subprocess.Popen(argv, stdout=stdout, stderr=subprocess.STDOUT, process_group=0, preexec_fn=lambda: _die_with_parent(parent))


def stop_child(child: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM to the child's group, then SIGKILL after `grace_s`: nothing of the row is left.
    SIGINT/SIGTERM wait meanwhile (blocked, delivered after): a second Ctrl-C cannot orphan it."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        _stop(child, grace_s)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _stop(child: subprocess.Popen, grace_s: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
