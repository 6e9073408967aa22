"""The check's verdict per video and for the run: JSON (everything), Markdown (for people),
and the console summary. A video fails when a run would fail it; it warns when a run would
answer from it but something deserves a look (fewer frames than planned, a decode that a
run would kill and retry or that took most of its deadline, fewer seconds decoded than the
header states)."""

from __future__ import annotations

import json
from pathlib import Path

LONGEST = 10  # decodes listed in the summary
SHOWN_USES = 3  # (task, doc) pairs named per video; the rest counted
SLOW_SHARE = 0.5  # a decode past this share of its deadline is warned about


def _uses(uses: list) -> str:
    named = ", ".join(f"{task} doc {doc}" for task, doc in uses[:SHOWN_USES])
    return named + (f" (+{len(uses) - SHOWN_USES} more)" if len(uses) > SHOWN_USES else "")


def truncated(result: dict) -> bool | None:
    """Fewer frames decode than the header lists (a run fails MP4/MOV on it), or the file
    was reported cut short; None when the header lists no count to compare."""
    if "cut short" in (result.get("error") or ""):
        return True
    listed, total = result.get("listed_frames"), result.get("total_frames")
    return None if not listed or total is None else total < listed


def assess(result: dict) -> tuple[str, list[str]]:
    """("ok" | "warn" | "fail", the reasons)."""
    if result.get("error"):
        return "fail", [result["error"]] + result.get("notes", [])
    warnings = list(result.get("notes", []))
    if result.get("indices_planned") is not None and result["indices_planned"] < (result.get("requested") or 0):
        warnings.append(f"only {result['total_frames']} frames: the plan asks {result['requested']}, each frame is used once")
    if truncated(result):
        warnings.append(f"the header lists {result['listed_frames']} frames but {result['total_frames']} decode")
    if result.get("decode_s") and result.get("deadline_s") and result["decode_s"] > SLOW_SHARE * result["deadline_s"]:
        warnings.append(f"the decode took {result['decode_s']:.1f} s of its {result['deadline_s']:.0f} s deadline: a run, which also "
                        "preprocesses the frames on busier cores, may kill it (raise decode_timeout_s)")
    stated = result.get("stream_duration_s") or result.get("duration_s")
    fps, total = result.get("avg_fps"), result.get("total_frames")
    if stated and fps and total and total / fps < 0.8 * stated and stated - total / fps > 2:
        warnings.append(f"{total / fps:.1f} s of video decode but the header states {stated:.1f} s (cut short?)")
    return ("warn" if warnings else "ok"), warnings


def build(videos: list, results: dict, doc_failures: list, settings: dict, elapsed_s: float, resumed: int) -> dict:
    """The JSON document: settings, summary, one entry per video, the docs without a video."""
    entries = []
    for video in videos:
        result = results[video.key]
        status, reasons = assess(result)
        entries.append({"path": video.path, "plan": video.plan.describe(), "uses": [list(u) for u in video.uses], "status": status,
                        "reasons": reasons, "truncated": truncated(result), **result})
    failed = [e for e in entries if e["status"] == "fail"]
    decoded = [e for e in entries if e.get("cpu_s") is not None and e["status"] != "fail"]
    cpu_s = sum(e["cpu_s"] for e in decoded)
    retried = [e for e in entries if e.get("tries", 1) > 1 and e["status"] != "fail"]
    summary = {
        "videos": len(entries), "ok": sum(e["status"] == "ok" for e in entries), "warn": sum(e["status"] == "warn" for e in entries),
        "fail": len(failed), "docs_without_video": len(doc_failures), "docs": sum(len(v.uses) for v in videos) + len(doc_failures),
        "resumed": resumed, "elapsed_s": round(elapsed_s, 2),
        # The run decodes each distinct (video, plan) once: its decode CPU time, over the
        # videos a run would answer from. Preprocessing (resize) is not included.
        "decode_core_hours": cpu_s / 3600, "decode_wall_s_sum": sum(e["decode_s"] for e in decoded),
        "deadline_s_lost_to_retries": sum(e.get("deadline_s") or 0 for e in retried),
        "longest_decodes": [{"path": e["path"], "decode_s": e["decode_s"], "cpu_s": e["cpu_s"], "backend": e.get("backend")}
                            for e in sorted(decoded, key=lambda e: -e["decode_s"])[:LONGEST]],
    }
    return {"settings": settings, "summary": summary, "videos": entries,
            "docs_without_video": [{"task": f.task, "doc_id": f.doc_id, "reason": f.reason} for f in doc_failures]}


def failure_lines(doc: dict) -> list[str]:
    """One line per bad video or document: what, why, which docs."""
    lines = [f"FAIL {e['path']}: {e['reasons'][0]} [{_uses([tuple(u) for u in e['uses']])}]"
             + (f" (earlier: {'; '.join(e['reasons'][1:])})" if len(e["reasons"]) > 1 else "") for e in doc["videos"] if e["status"] == "fail"]
    lines += [f"FAIL {f['task']}" + (f" doc {f['doc_id']}" if f["doc_id"] is not None else "") + f": {f['reason']}" for f in doc["docs_without_video"]]
    return lines


def console_summary(doc: dict, out: Path) -> str:
    s = doc["summary"]
    head = (f"lvu-ext check-videos: {s['videos']} videos ({s['docs']} docs): {s['ok']} ok, {s['warn']} warn, {s['fail']} fail"
            + (f", {s['docs_without_video']} docs without a video" if s["docs_without_video"] else "")
            + f"; {s['resumed']} from an earlier check; {s['elapsed_s']:.1f} s")
    lines = [head, *failure_lines(doc)]
    lines += [f"WARN {e['path']}: {'; '.join(e['reasons'])}" for e in doc["videos"] if e["status"] == "warn"]
    lines.append(f"estimated decode for the run: {_hours(s['decode_core_hours'])}, the sum of each video's decode CPU time")
    lines.append(f"report: {out / 'check_videos.md'} and {out / 'check_videos.json'}")
    return "\n".join(lines)


def _hours(hours: float) -> str:
    return f"{hours:.3g} core-hours ({hours * 3600:.1f} CPU s)"


def _fmt(value, spec: str = "", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def markdown(doc: dict) -> str:
    s, cfg = doc["summary"], doc["settings"]
    out = ["# lvu-ext check-videos", "",
           f"Tasks `{cfg['tasks']}`" + (f", include path `{cfg['include_path']}`" if cfg.get("include_path") else "")
           + f"; reader `{cfg['reader']}`, deadline `{cfg['timeout']}`, {cfg['workers']} worker processes.", "",
           f"**{s['videos']} videos** ({s['docs']} docs): {s['ok']} ok, {s['warn']} warn, **{s['fail']} fail**"
           + (f", **{s['docs_without_video']} docs without a video**" if s["docs_without_video"] else "")
           + f". Checked in {s['elapsed_s']:.1f} s ({s['resumed']} from an earlier check).", "",
           f"Estimated decode for the run: **{_hours(s['decode_core_hours'])}** (each distinct video and frame plan decoded once, "
           "the decode's CPU time; the video processor's resize is not included)"
           + (f", plus {s['deadline_s_lost_to_retries']:.0f} s waiting on decodes a run would kill and retry" if s["deadline_s_lost_to_retries"] else "")
           + ".", ""]
    bad = failure_lines(doc)
    if bad:
        out += ["## Failures", "", *[f"- {line[5:]}" for line in bad], ""]
    warned = [e for e in doc["videos"] if e["status"] == "warn"]
    if warned:
        out += ["## Warnings", "", *[f"- {e['path']}: {'; '.join(e['reasons'])}" for e in warned], ""]
    if s["longest_decodes"]:
        out += ["## Longest decodes", "", "| video | decode s | CPU s | reader |", "|---|---:|---:|---|"]
        out += [f"| {e['path']} | {e['decode_s']:.2f} | {e['cpu_s']:.2f} | {e['backend']} |" for e in s["longest_decodes"]] + [""]
    out += ["## Videos", "", "| status | video | docs | container | codec | size | MB | duration s | frames decoded / listed "
            "| planned / returned | truncated | decode s | reader | deadline s |",
            "|---|---|---|---|---|---|---:|---:|---|---|---|---:|---|---:|"]
    for e in doc["videos"]:
        size = f"{e['width']}x{e['height']}" if e.get("width") else "-"
        mb = _fmt(e.get("size_bytes") and e["size_bytes"] / 1e6, ".2f")
        container = (e.get("container") or "-").split(",")[0]
        out.append(f"| {e['status']} | {e['path']} | {len(e['uses'])} | {container} | {e.get('codec') or '-'} | {size} | {mb} "
                   f"| {_fmt(e.get('duration_s'), '.1f')} | {_fmt(e.get('total_frames'))} / {_fmt(e.get('listed_frames'))} "
                   f"| {_fmt(e.get('indices_planned'))} / {_fmt(e.get('frames_decoded'))} | {_fmt(e['truncated'])} "
                   f"| {_fmt(e.get('decode_s'), '.2f')} | {e.get('backend') or '-'} | {_fmt(e.get('deadline_s'), '.0f')} |")
    return "\n".join(out) + "\n"


def write(doc: dict, out: Path) -> None:
    (out / "check_videos.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    (out / "check_videos.md").write_text(markdown(doc), encoding="utf-8")
