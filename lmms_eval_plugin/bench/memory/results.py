"""From raw case results to table rows (ratios to `stock` at the same frame count) and
the issue's goals, each stated as met / not met / not measured."""

from __future__ import annotations

from lmms_eval_plugin.bench.memory.cases import CASES, CHUNKED, DEFAULT, METHOD_OFF, STOCK

MET, NOT_MET, NOT_MEASURED = "met", "not met", "not measured"
ROW_KEYS = ("case", "frames", "peak_mem_gb", "baseline_mem_gb", "peak_before_lm_gb", "prefill_s", "ttft_s", "total_s",
            "visual_tokens", "status", "mem_ratio_vs_stock", "prefill_ratio_vs_stock", "same_output_as_stock",
            "same_prefill_logits_as_stock", "prompt_tokens", "prefill_logit_rows", "prefill_logits_sha", "new_tokens", "error")


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else round(a / b, 4)


def build_rows(results: list[dict]) -> list[dict]:
    stock = {r["frames"]: r for r in results if r["case"] == STOCK and r.get("status") == "ok"}
    rows = []
    for r in sorted(results, key=lambda r: (r["frames"], CASES.index(r["case"]) if r["case"] in CASES else 99)):
        row = {k: r.get(k) for k in ROW_KEYS}
        ref = stock.get(r["frames"])
        ok = r.get("status") == "ok"
        if r["case"] != STOCK and ref is not None and ok:
            row["mem_ratio_vs_stock"] = _ratio(r.get("peak_mem_gb"), ref.get("peak_mem_gb"))
            row["prefill_ratio_vs_stock"] = _ratio(r.get("prefill_s"), ref.get("prefill_s"))
            row["same_output_as_stock"] = r.get("new_tokens") == ref.get("new_tokens")
            if r.get("prefill_logits_sha") and ref.get("prefill_logits_sha"):
                row["same_prefill_logits_as_stock"] = r["prefill_logits_sha"] == ref["prefill_logits_sha"]
        rows.append(row)
    return rows


def _find(rows, case, frames):
    return next((r for r in rows if r["case"] == case and r["frames"] == frames), None)


def _goal(name, status, detail):
    return {"goal": name, "status": status, "detail": detail}


def _off_vs_stock(rows, device: str, tolerance: float) -> list[dict]:
    """`tolerance`: relative slack on peak memory (process RSS moves by a few MB with
    the modules a path imports; the CUDA allocator's peak is exact, so 0 there)."""
    pairs = [(r, _find(rows, STOCK, r["frames"])) for r in rows if r["case"] == METHOD_OFF]
    pairs = [(off, st) for off, st in pairs if st is not None]
    mem_name = f"{device}: method off (rope_ext=none,pooling=native) never uses more memory than stock"
    same_name = f"{device}: method-off outputs identical to stock"
    if not pairs:
        return [_goal(mem_name, NOT_MEASURED, "no method-off/stock pair ran"),
                _goal(same_name, NOT_MEASURED, "no method-off/stock pair ran")]
    worse, compared, details = [], 0, []
    for off, st in pairs:
        if off["status"] != "ok" and st["status"] == "ok":
            worse.append(f"{off['frames']} frames: method off {off['status']}, stock ok")
        elif off["status"] == "ok" and st["status"] == "ok":
            compared += 1
            if off["peak_mem_gb"] is not None and st["peak_mem_gb"] is not None and \
                    off["peak_mem_gb"] > st["peak_mem_gb"] * (1 + tolerance):
                worse.append(f"{off['frames']} frames: {off['peak_mem_gb']:.2f} > {st['peak_mem_gb']:.2f} GB")
        elif off["status"] == "ok":
            details.append(f"{off['frames']} frames: stock {st['status']}, method off ok")
    mem = _goal(mem_name, NOT_MET if worse else MET,
                "; ".join(worse) or f"method off <= stock{f' (+{tolerance:.0%} RSS noise)' if tolerance else ''} "
                f"at all {compared} frame counts where both ran" + (
                    ("; " + "; ".join(details)) if details else ""))
    same = [off for off, st in pairs if off["status"] == "ok" and st["status"] == "ok"]
    differ = [str(off["frames"]) for off in same if not off["same_output_as_stock"]]
    if not same:
        out = _goal(same_name, NOT_MEASURED, "no frame count where both ran")
    else:
        out = _goal(same_name, NOT_MET if differ else MET,
                    f"generated tokens differ at {', '.join(differ)} frames" if differ
                    else f"same generated tokens at {', '.join(str(o['frames']) for o in same)} frames")
    return [mem, out]


def _cpu_ratio_goal(rows) -> dict:
    name = "cpu: lvu_ext defaults peak memory <= 0.45 x stock at 256 frames"
    d, s = _find(rows, DEFAULT, 256), _find(rows, STOCK, 256)
    if d is None or s is None:
        return _goal(name, NOT_MEASURED, "256 frames of stock and defaults not both run")
    if d["status"] == "ok" and s["status"] != "ok":
        return _goal(name, MET, f"stock {s['status']} at 256 frames, defaults ran ({d['peak_mem_gb']:.2f} GB)")
    if d["status"] != "ok":
        return _goal(name, NOT_MET, f"defaults {d['status']} at 256 frames")
    r = d["mem_ratio_vs_stock"]
    return _goal(name, MET if r is not None and r <= 0.45 else NOT_MET,
                 f"{d['peak_mem_gb']:.2f} / {s['peak_mem_gb']:.2f} GB = {r:.3f}")


def _cpu_chunked_goal(rows) -> dict:
    name = "cpu: lvu_ext defaults + prefill_chunk peak memory <= 0.25 x stock at 256 frames"
    d, s = _find(rows, CHUNKED, 256), _find(rows, STOCK, 256)
    if d is None or s is None or s["status"] != "ok":
        return _goal(name, NOT_MEASURED, "256 frames of stock and defaults + prefill_chunk not both run")
    if d["status"] != "ok":
        return _goal(name, NOT_MET, f"defaults + prefill_chunk {d['status']} at 256 frames")
    r = d["mem_ratio_vs_stock"]
    return _goal(name, MET if r is not None and r <= 0.25 else NOT_MET, f"{d['peak_mem_gb']:.2f} / {s['peak_mem_gb']:.2f} GB = {r:.3f}")


def _gpu_goals(rows, measured: bool) -> list[dict]:
    names = ("gpu 7B: 256 frames with lvu_ext defaults under 24 GB peak",
             "gpu 7B: 1024 frames with lvu_ext defaults within one 80 GB GPU",
             "gpu 7B: prefill >= 2x faster than stock at 256 frames (lvu_ext defaults)")
    if not measured:
        why = "needs a GPU run of the 7B architecture (lvu-ext bench on a CUDA machine)"
        return [_goal(n, NOT_MEASURED, why) for n in names]
    out = []
    d256, d1024, s256 = _find(rows, DEFAULT, 256), _find(rows, DEFAULT, 1024), _find(rows, STOCK, 256)
    if d256 is None:
        out.append(_goal(names[0], NOT_MEASURED, "256 frames not run"))
    elif d256["status"] != "ok":
        out.append(_goal(names[0], NOT_MET, f"defaults {d256['status']}"))
    else:
        out.append(_goal(names[0], MET if d256["peak_mem_gb"] < 24 else NOT_MET, f"peak {d256['peak_mem_gb']:.2f} GB"))
    if d1024 is None:
        out.append(_goal(names[1], NOT_MEASURED, "1024 frames not run"))
    elif d1024["status"] != "ok":
        out.append(_goal(names[1], NOT_MET, f"defaults {d1024['status']}"))
    else:
        out.append(_goal(names[1], MET if d1024["peak_mem_gb"] <= 80 else NOT_MET, f"peak {d1024['peak_mem_gb']:.2f} GB"))
    if d256 is None or s256 is None:
        out.append(_goal(names[2], NOT_MEASURED, "256 frames of stock and defaults not both run"))
    elif d256["status"] == "ok" and s256["status"] != "ok":
        out.append(_goal(names[2], MET, f"stock {s256['status']} at 256 frames"))
    elif d256["status"] != "ok" or not d256["prefill_s"]:
        out.append(_goal(names[2], NOT_MET, f"defaults {d256['status']}"))
    else:
        speedup = s256["prefill_s"] / d256["prefill_s"]
        out.append(_goal(names[2], MET if speedup >= 2 else NOT_MET, f"{speedup:.2f}x"))
    return out


CPU_RSS_TOLERANCE = 0.01


def evaluate_goals(rows: list[dict], device: str, arch: str, shrunk: bool, isolation: str) -> list[dict]:
    on_gpu = device.startswith("cuda")
    goals = _gpu_goals(rows, measured=on_gpu and arch == "7b" and not shrunk)
    if on_gpu:
        goals += _off_vs_stock(rows, "gpu", 0.0)
        goals.append(_goal("cpu: lvu_ext defaults peak memory <= 0.45 x stock at 256 frames", NOT_MEASURED, "GPU run"))
        return goals
    goals.append(_cpu_ratio_goal(rows))
    goals.append(_cpu_chunked_goal(rows))
    goals += _off_vs_stock(rows, "cpu", CPU_RSS_TOLERANCE)
    if isolation != "process":  # one process: RSS carries over from case to case
        why = "CPU run with --isolation inline: peak RSS is not per case (use --isolation process)"
        for g in goals:
            if g["goal"].startswith("cpu:") and "memory" in g["goal"]:
                g.update(status=NOT_MEASURED, detail=why)
    return goals
