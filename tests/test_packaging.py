"""A non-editable install carries the tasks, the patches and the entry point."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_tasks_patches_and_entry_point(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(tmp_path)],
                   check=True, capture_output=True, text=True)
    wheel = next(tmp_path.glob("lvu_ext-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {p.relative_to(REPO).as_posix() for p in (REPO / "tasks").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    expected = {"lmms_eval_plugin/" + n for n in expected}
    assert expected <= names, sorted(expected - names)
    assert "lmms_eval_plugin/patches/rope_window.py" in names
    assert "lmms_eval_plugin/data/reference_results.json" in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[lmms_eval.models]" in entry_points and "lvu_ext = lmms_eval_plugin.registration:MANIFEST" in entry_points


def test_entry_point_registers_the_model():
    from lmms_eval.models import get_model

    from lmms_eval_plugin.models.lvu_ext import LvuExt

    assert get_model("lvu_ext") is LvuExt


def test_entry_point_survives_importing_registration_first():
    # lmms-eval's registry loads entry points while lmms_eval.models initialises; a payload
    # built at import used to leave the process without lvu_ext (only a logged warning).
    code = ("import lmms_eval_plugin.registration\n"
            "from lmms_eval.models import get_model\n"
            "print(get_model('lvu_ext').__name__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO.parent))
    assert proc.returncode == 0 and proc.stdout.strip().endswith("LvuExt"), proc.stdout[-2000:] + proc.stderr[-3000:]
