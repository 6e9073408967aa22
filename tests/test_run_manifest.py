"""lvu_ext_run.json: versions from importlib.metadata, the checkpoint's commit as the hub
cache / a snapshot folder / a git clone gives it, dtype / device / attention, all model args,
each task's frame plan, and the per-request records pointing at it. (The CLI runs of
test_report_e2e.py and test_resume_multiprocess.py check the manifest of real 1- and
2-process runs, YAML hashes included.)"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

from conftest import make_lm, make_request
from lmms_eval_plugin.bookkeeping.run_manifest import MANIFEST_NAME, checkpoint_revision, yaml_record
from lmms_eval_plugin.engine.video import FramePlan

REPO = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
HUB_ID = "lvu-test/tiny-onevision"


def hub_cache_with(checkpoint: Path, root: Path, repo_id: str, commit: str) -> Path:
    """The layout huggingface_hub leaves after a download: models--org--name/{refs/main, snapshots/<commit>/}."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(checkpoint, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return repo / "snapshots" / commit


def test_manifest_of_a_hub_checkpoint(tiny_checkpoints, sample_video, tmp_path, monkeypatch):
    import huggingface_hub.constants

    hub = tmp_path / "hub"
    hub_cache_with(tiny_checkpoints["llava_onevision"], hub, HUB_ID, COMMIT)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))  # read at call time by hub and transformers
    records = tmp_path / "out" / "lvu_ext_requests.jsonl"
    lm = make_lm(HUB_ID, record_path=str(records), dtype="float32", attn_implementation="eager")

    manifest_file = tmp_path / "out" / MANIFEST_NAME
    manifest = json.loads(manifest_file.read_text())
    for package in ("lmms-eval", "transformers", "torch", "accelerate", "lvu_ext"):
        assert manifest["versions"][package] == importlib.metadata.version(package)
    assert manifest["checkpoint"]["id"] == HUB_ID
    assert (manifest["checkpoint"]["revision"], manifest["checkpoint"]["revision_source"]) == (COMMIT, "hub cache")
    assert (manifest["dtype"], manifest["device"], manifest["attn_implementation"]) == ("float32", "cpu", "eager")
    assert manifest["model_args"] == json.loads(json.dumps(asdict(lm.args)))
    assert manifest["tasks"] == {}

    lm.generate_until([make_request(lm, str(sample_video), "What is shown?", {"max_new_tokens": 2}, task="unit_task",
                                    metadata={"lvu_num_frames": 4})])
    manifest = json.loads(manifest_file.read_text())
    task = manifest["tasks"]["unit_task"]
    assert task["frame_plan"] == FramePlan(num_frames=4).describe()
    assert task["yaml"] is None and "TaskManager" in task["yaml_note"]  # not run by the CLI
    assert [json.loads(line)["run_manifest"] for line in records.read_text().splitlines()] == [str(manifest_file)]


def test_revision_of_local_folders(tiny_checkpoints, tmp_path):
    ckpt = tiny_checkpoints["llava_onevision"]
    snapshot = hub_cache_with(ckpt, tmp_path / "hub", HUB_ID, COMMIT)
    assert checkpoint_revision(str(snapshot), str(snapshot), "main") == (COMMIT, "hub snapshot folder")

    plain = tmp_path / "plain"
    shutil.copytree(ckpt, plain)
    revision, source = checkpoint_revision(str(plain), str(plain), "main")
    assert revision is None and "without" in source

    clone = tmp_path / "clone"
    shutil.copytree(ckpt, clone)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q", "-b", "main"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "weights"], check=True)
    head = (clone / ".git" / "refs" / "heads" / "main").read_text().strip()  # what git wrote, read without git
    assert checkpoint_revision(str(clone), str(clone), "main") == (head, "git clone")

    assert checkpoint_revision("org/name", "org/name", COMMIT) == (COMMIT, "revision model arg")


def test_yaml_hash_covers_the_include_chain():
    variant = REPO / "tasks" / "videomme" / "videomme_lvu_f32.yaml"
    record = yaml_record(str(variant))
    assert record["yaml_sha256"] == hashlib.sha256(variant.read_bytes()).hexdigest()
    # the include chain, followed with a plain regex over the files
    expected, current = [], variant
    while True:
        found = re.search(r"^include:\s*(\S+)\s*$", current.read_text(), re.MULTILINE)
        if not found:
            break
        target = Path(found.group(1)) if Path(found.group(1)).is_file() else current.parent / found.group(1)
        expected.append(target.resolve())
        current = target
    assert expected, "the variant includes its template"
    assert [Path(i["path"]).resolve() for i in record["yaml_includes"]] == expected
    assert all(i["sha256"] == hashlib.sha256(Path(i["path"]).read_bytes()).hexdigest() for i in record["yaml_includes"])


@pytest.mark.parametrize("missing", [None, -1, "/no/such/task.yaml"])
def test_yaml_record_without_a_file(missing):
    assert yaml_record(missing) == {"yaml": None, "yaml_sha256": None}
