"""`lvu_demo`: a bundled, offline task that proves the pipeline end to end.

Four generated clips with one multiple-choice question each. The docs and videos ship
inside the package, so the task loads them from beside this file instead of a hub
dataset. With the tiny random models its score means nothing.
"""

import json
import os

import datasets
from lmms_eval.api.task import ConfigurableTask

HERE = os.path.dirname(os.path.abspath(__file__))


class LvuDemoTask(ConfigurableTask):
    def __init__(self, config=None):
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        super().__init__(config=config)

    def download(self, dataset_kwargs=None) -> None:
        with open(os.path.join(HERE, "docs.json"), encoding="utf-8") as fh:
            docs = json.load(fh)
        self.dataset = datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})
        self.dataset_no_image = self.dataset


def doc_to_visual(doc):
    return [os.path.join(HERE, "videos", doc["video"])]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    options = "\n".join(doc["options"])
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}\n{options}{kwargs.get('post_prompt', '')}"


def process_results(doc, results):
    # The harness's own multiple-choice answer extraction, as MLVU/Video-MME use it.
    from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer

    pred = extract_mcq_answer(results[0], choices=["A", "B", "C", "D"])
    return {"accuracy": float(pred == doc["answer"])}
