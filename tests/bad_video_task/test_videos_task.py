"""Test-only task over generated videos: docs come from the JSON file named by
$LVU_EXT_TEST_DOCS, each with an absolute `video` path and a `kind` (what is wrong
with it). Kind `harness_exit` resolves its video through lmms-eval's own MLVU helper,
which calls sys.exit when the file is missing."""

import json
import os

import datasets
from lmms_eval.api.task import ConfigurableTask


class TestVideosTask(ConfigurableTask):
    def __init__(self, config=None):
        super().__init__(config={k: v for k, v in (config or {}).items() if k != "class"})

    def download(self, dataset_kwargs=None) -> None:
        with open(os.environ["LVU_EXT_TEST_DOCS"], encoding="utf-8") as fh:
            docs = json.load(fh)
        self.dataset = datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})
        self.dataset_no_image = self.dataset


def doc_to_visual(doc):
    if doc["kind"] == "harness_exit":
        from lmms_eval.tasks.mlvu.utils import mlvu_doc_to_visual_dev

        return mlvu_doc_to_visual_dev({"video_name": doc["video"]})
    return [doc["video"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return f"What colour is the square? ({doc['kind']})\nA. red\nB. blue\nAnswer with the letter."


def process_results(doc, results):
    return {"accuracy": float(results[0].strip()[:1] == doc["answer"])}
