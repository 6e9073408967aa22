"""Where the bundled task YAMLs live, for `--include_path`."""

import os


def tasks_dir() -> str:
    import lmms_eval_plugin.tasks as tasks_pkg

    return os.path.dirname(os.path.abspath(tasks_pkg.__file__))


def main(argv=None) -> int:
    print(tasks_dir())
    return 0
