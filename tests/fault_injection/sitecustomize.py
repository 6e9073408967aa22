"""Test-only fault injection for processes the tests cannot reach from inside pytest: the
lmms-eval CLI, accelerate's ranks, and the decode workers forked from their fork server.

Python imports `sitecustomize` at start-up from the first folder on sys.path that holds
one; a test puts this folder on PYTHONPATH, so every process of the run (the fork server
inherits the environment) loads it, and nothing in the package knows about tests. It waits
for `lmms_eval_plugin.engine.video` to be imported and wraps its `load_video`:
- a path containing $LVU_TEST_HANG_MARKER never returns (a reader stuck for good);
- a path containing $LVU_TEST_KILL_MARKER SIGKILLs its own process the first time any
  process reads it (a flag file in $LVU_TEST_KILL_FLAG_DIR), then reads normally.
Modules that import `load_video` by name after that get the wrapped function.
"""

import os
import sys

_TARGET = "lmms_eval_plugin.engine.video"


def _faulty(load):
    def load_video(path, *args, **kwargs):
        import signal
        import time

        hang = os.environ.get("LVU_TEST_HANG_MARKER")
        if hang and hang in str(path):
            while True:
                time.sleep(3600)
        kill = os.environ.get("LVU_TEST_KILL_MARKER")
        if kill and kill in str(path):
            try:
                os.close(os.open(os.path.join(os.environ["LVU_TEST_KILL_FLAG_DIR"], "killed"), os.O_CREAT | os.O_EXCL))
                os.kill(os.getpid(), signal.SIGKILL)
            except FileExistsError:
                pass  # killed once already: read it
        return load(path, *args, **kwargs)

    return load_video


if os.environ.get("LVU_TEST_HANG_MARKER") or os.environ.get("LVU_TEST_KILL_MARKER"):
    import importlib.abc
    import importlib.machinery

    class _WrapLoadVideo(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != _TARGET:
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None:
                return None
            execute = spec.loader.exec_module

            def exec_module(module):
                execute(module)
                module.load_video = _faulty(module.load_video)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _WrapLoadVideo())
