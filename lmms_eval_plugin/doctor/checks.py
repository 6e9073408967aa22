"""The individual checks of `lvu-ext doctor`. Each returns one or more `Check` lines and
never raises: a broken install is what it is there to report."""

from __future__ import annotations

import os
import tempfile
import traceback
from importlib import metadata

from lmms_eval_plugin.doctor.known_bad import KNOWN_BAD
from lmms_eval_plugin.doctor.ranges import CHECKED, admits, describe, installed_version, supported_ranges
from lmms_eval_plugin.doctor.result import FAIL, INFO, OK, WARN, Check

REINSTALL = "pip install -c constraints.txt -e .  (from the lvu_ext checkout: the tested versions)"


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]


def versions() -> list[Check]:
    try:
        ranges = supported_ranges()
    except metadata.PackageNotFoundError:
        return [Check(FAIL, "lvu_ext", "not installed as a distribution (no metadata)", REINSTALL)]
    out = []
    for name in CHECKED:
        req = ranges.get(name)
        version = installed_version(name)
        wanted = describe(req)
        if version is None:
            out.append(Check(FAIL, name, f"not installed (supported: {wanted})", f"pip install '{name}{wanted}'"))
        elif req is not None and not admits(req, version):
            out.append(Check(FAIL, name, f"{version} is outside the supported range {wanted}", f"pip install '{name}{wanted}'"))
        else:
            out.append(Check(OK, name, f"{version} (supported: {wanted})"))
    return out


def known_bad_combinations() -> list[Check]:
    out = []
    for bad in KNOWN_BAD:
        found = bad.matches()
        if found:
            out.append(Check(FAIL, f"known-bad {bad.package}", f"{found}: {bad.why}", bad.fix))
    if not out:
        out.append(Check(OK, "known-bad combinations", f"none of the {len(KNOWN_BAD)} known-bad combinations is installed"))
    return out


def torch_pair() -> Check:
    try:
        import torch
        import torchvision
        from torchvision.ops import nms

        boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        nms(boxes, torch.tensor([1.0]), 0.5)  # fails when torchvision's ops were built for another torch
        return Check(OK, "torch + torchvision", f"{torch.__version__} + {torchvision.__version__} import and run together")
    except Exception as exc:
        return Check(FAIL, "torch + torchvision", f"the pair does not work together ({_error(exc)})",
                     "pip install torch==2.14.1 torchvision==0.29.1  (install them together)")


def lmms_eval_evaluator() -> Check:
    """What every evaluation runs first: import the evaluator and its filelock set-up."""
    try:
        from lmms_eval import evaluator

        enable = getattr(evaluator, "_enable_reentrant_filelocks", None)
        if enable is not None:
            enable()
        return Check(OK, "lmms-eval evaluator", "imports and sets up its file locks")
    except Exception as exc:
        fix = REINSTALL
        if "filelock" in str(exc):
            fix = "pip install 'filelock<4.3'  (" + REINSTALL + ")"
        return Check(FAIL, "lmms-eval evaluator", f"cannot start an evaluation ({_error(exc)})", fix)


def entry_point() -> Check:
    found = [ep for ep in metadata.entry_points(group="lmms_eval.models") if ep.name == "lvu_ext"]
    if not found:
        return Check(FAIL, "lmms_eval.models entry point", "lvu_ext is not registered", REINSTALL)
    try:
        manifest = found[0].load()
        return Check(OK, "lmms_eval.models entry point", f"lvu_ext -> {manifest.simple_class_path}")
    except Exception as exc:
        return Check(FAIL, "lmms_eval.models entry point", f"lvu_ext does not load ({_error(exc)})", REINSTALL)


def _write_clip(path: str, frames: int = 12) -> None:
    import av
    import numpy as np

    with av.open(path, "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for t in range(frames):
            image = np.full((48, 64, 3), (t * 20) % 255, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def video_decoders() -> list[Check]:
    """The default readers (PyAV) must decode a generated clip; decord is optional (decoder=decord)."""
    from lmms_eval_plugin.engine import decord_decode
    from lmms_eval_plugin.engine.video import FramePlan, load_video

    with tempfile.TemporaryDirectory() as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        try:
            _write_clip(clip)
        except Exception as exc:
            return [Check(FAIL, "PyAV", f"cannot write a test clip ({_error(exc)})", "pip install 'av>=15.1,<16'")]
        results = {}
        for name, reader in (("PyAV", "auto"), ("decord", "decord")):
            if name == "decord" and not decord_decode.available():
                results[name] = (None, "not installed: optional, only for decoder=decord (lmms-eval's legacy llava_onevision reader)")
                continue
            try:
                video = load_video(clip, FramePlan(num_frames=4), reader=reader)
                results[name] = (True, f"decoded 4 frames {tuple(video.frames.shape)} from a generated 12-frame clip ({video.backend})")
            except Exception as exc:
                results[name] = (False, f"cannot decode a generated clip ({_error(exc)})")
    pyav_ok, decord_ok = results["PyAV"][0], results["decord"][0]
    return [Check(OK if pyav_ok else FAIL, "PyAV", results["PyAV"][1], "pip install 'av>=15.1,<16'  (lvu_ext's readers)"),
            Check(OK if decord_ok is not False else WARN, "decord", results["decord"][1],
                  "pip install 'lvu_ext[decord]'  (only needed for decoder=decord; x86_64 wheels only)")]


def decode_workers() -> list[Check]:
    """What `decode_workers=auto` picks here, whether shared memory can carry the workers'
    output, and whether the optional torchcodec decoder can load."""
    from lmms_eval_plugin.bench.decode.decoders import available
    from lmms_eval_plugin.engine.frame_source import MIN_SHM_BYTES, decode_choice, shm_free_bytes
    from lmms_eval_plugin.model_args import parse_model_args

    workers, depth, why = decode_choice(parse_model_args(pretrained="tiny-random-onevision"))  # the defaults, placed as a run places them
    out = [Check(INFO, "decode workers", f"decode_workers=auto: {workers} per process, {depth} video(s) ahead ({why})")]
    free = shm_free_bytes()
    if free is not None and free < MIN_SHM_BYTES:
        out.append(Check(WARN, "shared memory", f"/dev/shm has {free / 1e9:.2f} GB free: decode_workers=auto falls back to 0",
                         "docker run --shm-size=16g ... (or decode_workers=0)"))
    else:
        out.append(Check(OK, "shared memory", "/dev/shm: " + ("not found" if free is None else f"{free / 1e9:.1f} GB free")))
    why = available("torchcodec")
    out.append(Check(INFO, "torchcodec", f"optional, not used by lvu_ext: {why}" if why else
                     "installed and loads FFmpeg: `lvu-ext bench --decode` compares it"))
    return out


def accelerator() -> list[Check]:
    import importlib.util

    import torch

    flash = importlib.util.find_spec("flash_attn") is not None
    flash_line = Check(INFO, "flash-attn", "installed: attn_implementation=flash_attention_2 works" if flash
                       else "not installed: attn_implementation=sdpa (the default) is used")
    if not torch.cuda.is_available():
        return [Check(INFO, "CUDA", f"not available (torch {torch.__version__}): runs on the CPU, float32 unless dtype= says otherwise"),
                flash_line]
    name = torch.cuda.get_device_name(0)
    bf16 = torch.cuda.is_bf16_supported()
    return [Check(OK, "CUDA", f"{torch.cuda.device_count()} device(s), {name}, CUDA {torch.version.cuda}"),
            Check(OK if bf16 else WARN, "bf16", "supported: dtype=bfloat16" if bf16 else "not supported on this GPU",
                  "use dtype=float16 (or float32)"),
            flash_line]


def tasks_folder() -> Check:
    from lmms_eval_plugin.paths import tasks_dir

    folder = tasks_dir()
    yamls = [f for _, _, files in os.walk(folder) for f in files if f.endswith(".yaml")]
    if not yamls:
        return Check(FAIL, "tasks folder", f"{folder} holds no task YAML", REINSTALL)
    return Check(OK, "tasks folder", f"--include_path {folder}  ({len(yamls)} task YAMLs)")


def hf_home() -> Check:
    """lmms-eval creates its dataset cache under HF_HOME while loading tasks; a folder that
    cannot be created or written fails there (PermissionError) and the run exits 0."""
    import tempfile

    folder = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    source = "HF_HOME" if os.environ.get("HF_HOME") else "HF_HOME unset, the default"
    fix = "export HF_HOME=/a/writable/folder (datasets and benchmark videos go there)"
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".lvu_ext_doctor_"):
            pass
    except OSError as exc:
        return Check(FAIL, "HF_HOME", f"{folder} ({source}) cannot be created or written: {_error(exc)}", fix)
    return Check(OK, "HF_HOME", f"{folder} ({source}) is writable")


def video_folders() -> list[Check]:
    from lmms_eval_plugin.doctor.video_dirs import benchmark_video_dirs

    try:
        dirs = benchmark_video_dirs()
    except Exception as exc:
        return [Check(WARN, "benchmark video folders", f"cannot compute them the harness's way ({_error(exc)})")]
    out = []
    for benchmark, folder in dirs.items():
        if not os.path.isabs(folder):  # MLVU's utils default HF_HOME to a path relative to the working directory
            out.append(Check(WARN, f"videos: {benchmark}",
                             f"{folder} is relative to the working directory ({os.path.abspath(folder)}) because HF_HOME is unset",
                             "export HF_HOME=/path/to/hf before running lmms-eval, so every benchmark finds its videos in one place"))
        elif os.path.isdir(folder):
            out.append(Check(OK, f"videos: {benchmark}", f"{folder} exists"))
        else:
            out.append(Check(INFO, f"videos: {benchmark}",
                             f"{folder} does not exist yet (the harness downloads it on the first run; set HF_HOME to move it)"))
    return out


def embedded_default() -> Check:
    try:
        import transformers
        from transformers import AutoConfig

        from lmms_eval_plugin.checkpoints.families import detect_family
        from lmms_eval_plugin.checkpoints.tiny_models import cache_root, ensure_tiny_checkpoint

        path = ensure_tiny_checkpoint("tiny-random-onevision")
        family = detect_family(AutoConfig.from_pretrained(path))
        getattr(transformers, family.model_class).from_pretrained(path)
        return Check(OK, "embedded default", f"tiny-random-onevision builds and loads ({path}; cache: {cache_root()})")
    except Exception as exc:
        traceback.print_exc()
        return Check(FAIL, "embedded default", f"tiny-random-onevision does not build ({_error(exc)})",
                     "set LVU_EXT_CACHE to a writable folder; " + REINSTALL)
