"""A bad model arg through the real lmms-eval CLI: one message listing the valid keys,
before any weight is loaded, and a non-zero exit (lmms-eval itself would log the error
and exit 0; lvu_ext turns it into a SystemExit)."""

from cli_runner import TASKS, offline_env, run_cli
from lmms_eval_plugin.model_args import valid_keys


def test_unknown_model_arg_stops_the_process_before_loading(tmp_path):
    out = tmp_path / "out"
    proc = run_cli(["--model", "lvu_ext", "--model_args", "pretrained=/nonexistent/checkpoint,num_frame=8",
                    "--tasks", "lvu_demo", "--include_path", str(TASKS), "--output_path", str(out)],
                   offline_env(tmp_path), check_rc=False)
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    lines = [line for line in proc.stderr.splitlines() if line.startswith("lvu_ext: unknown model arg(s) num_frame.")]
    assert len(lines) == 1, proc.stderr[-3000:]  # one message, not a traceback per rank/attempt
    assert lines[0].endswith("Valid keys: " + ", ".join(valid_keys()))
    # the checkpoint (which does not exist) was never opened
    assert "could not be built" not in proc.stderr and "Loading weights" not in proc.stderr + proc.stdout
    assert not list(out.rglob("*_results.json"))
