"""Where lmms-eval's own benchmark utils look for videos: `$HF_HOME/<cache_dir>`.

MLVU, Video-MME (and so Video-MME-long), LVBench and EgoSchema compute the folder once, at
import, from their own built-in YAML (MLVU's default HF_HOME is even relative to the
working directory; EgoSchema's videos sit in `videos/` below it): those module values are
read as they are. LongVideoBench resolves the running task's `cache_dir`, i.e. our variant's."""

from __future__ import annotations

import os

import yaml

from lmms_eval_plugin.paths import tasks_dir


def _cache_name(template: str) -> str:
    with open(os.path.join(tasks_dir(), template), encoding="utf-8") as fh:
        text = "".join(line for line in fh if "!function" not in line)
    return yaml.safe_load(text)["dataset_kwargs"]["cache_dir"]


def benchmark_video_dirs() -> dict[str, str]:
    from lmms_eval.tasks.egoschema import utils as egoschema
    from lmms_eval.tasks.lvbench import utils as lvbench
    from lmms_eval.tasks.mlvu import utils as mlvu
    from lmms_eval.tasks.videomme import utils as videomme
    from lmms_eval.utils import resolve_cache_dir

    lvb_home = os.path.expanduser(os.getenv("HF_HOME", "~/.cache/huggingface/"))  # longvideobench/utils.py's rule
    return {
        "mlvu_dev": mlvu.cache_dir_dev,
        "mlvu_test": mlvu.cache_dir_test,
        "videomme": os.path.join(videomme.base_cache_dir, videomme.cache_name),
        "longvideobench": str(resolve_cache_dir(_cache_name("longvideobench/_longvideobench_val_v_lvu_template.yaml"), base_dir=lvb_home)),
        "videomme_long": os.path.join(videomme.base_cache_dir, videomme.cache_name),
        "lvbench": os.path.join(lvbench.base_cache_dir, lvbench.cache_name),
        "egoschema": egoschema.cache_dir,
    }
