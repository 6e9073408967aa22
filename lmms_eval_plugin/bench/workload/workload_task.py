"""The workload benchmark's local task: K generated videos x Q questions each.

The docs (one per question) come from the JSON file named by $LVU_WORKLOAD_DOCS, written
by `lvu-ext bench --workload`; the YAML beside it points here through a one-line shim.
Doc fields follow Video-MME's layout (videoID, question, options, answer), so the
questions of one video share its file, as in the real benchmarks.
"""

import json
import os

import datasets
from lmms_eval.api.task import ConfigurableTask

DOCS_ENV = "LVU_WORKLOAD_DOCS"


class WorkloadTask(ConfigurableTask):
    def __init__(self, config=None):
        super().__init__(config={k: v for k, v in (config or {}).items() if k != "class"})

    def download(self, dataset_kwargs=None) -> None:
        with open(os.environ[DOCS_ENV], encoding="utf-8") as fh:
            docs = json.load(fh)
        self.dataset = datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})
        self.dataset_no_image = self.dataset


def doc_to_visual(doc):
    return [doc["video"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    options = "\n".join(doc["options"])
    return f"{doc['question']}\n{options}\nAnswer with the option's letter from the given choices directly."


def process_results(doc, results):
    from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer

    pred = extract_mcq_answer(results[0], choices=["A", "B", "C", "D"])
    return {"accuracy": float(pred == doc["answer"])}
