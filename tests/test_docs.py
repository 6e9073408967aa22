"""The docs cannot go stale: every relative link in README.md and docs/ resolves (anchors
against the target's headings), every `lvu-ext` subcommand and flag they write is one the
CLI's own `--help` lists, docs/model-args.md and `model_args.py` name the same args with the
same defaults, and the dataset ids they name are the ones the task YAMLs load."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from lmms_eval_plugin.model_args import LvuArgs

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
BENCH_MODES = ("--workload", "--decode", "--gpu-suite", "--cache-sweep")  # `lvu-ext bench` modes, each with its own parser

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _prose(text: str) -> str:
    """The text outside fenced code blocks (blocks blanked line for line)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def _fenced(text: str) -> list[str]:
    return [m.group(0) for m in FENCE.finditer(text)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    keep = [c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN"]
    return "".join(keep).replace(" ", "-")


@functools.cache
def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for m in HEADING.finditer(_prose(path.read_text(encoding="utf-8"))):
        slug = _slug(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(path: Path) -> list[str]:
    prose = INLINE_CODE.sub(lambda m: " " * len(m.group(0)), _prose(path.read_text(encoding="utf-8")))
    return [m.group(1) for m in LINK.finditer(prose)]


def test_the_docs_exist():
    names = {_rel(p) for p in DOCS}
    for page in ("model-args", "method", "benchmarks", "reproduce", "performance", "decoding", "data-parallel",
                 "bad-input", "report", "troubleshooting", "architecture"):
        assert f"docs/{page}.md" in names, f"docs/{page}.md is missing"


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 250, f"README.md has {lines} lines; the rest belongs in docs/"


def test_ci_still_finds_the_two_setup_commands():
    """.ci/run runs the README's two set-up commands verbatim, extracted by .ci/readme_commands.py."""
    got = [subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_commands.py"), n], capture_output=True, text=True, timeout=60)
           for n in ("1", "2")]
    assert [g.returncode for g in got] == [0, 0], [g.stderr for g in got]
    assert "lmms-eval --model lvu_ext" in got[0].stdout and "--tasks lvu_demo" in got[0].stdout
    assert "python -m pytest" in got[1].stdout


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_relative_links_resolve(path):
    broken = []
    for target in _links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {_rel(dest)}")
    assert not broken, f"{_rel(path)}: " + "; ".join(broken)


def test_the_link_checker_sees_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nSee [x](missing.md), [y](#title), [z](#nope), `[not](a link)`, ![i](pic.png).\n\n"
                    "```\n[in code](nope.md)\n# not a heading\n```\n", encoding="utf-8")
    assert _links(page) == ["missing.md", "#title", "#nope", "pic.png"]
    assert _anchors(page) == {"title"}
    assert _slug("Which baseline each Δ is taken from") == "which-baseline-each-δ-is-taken-from"
    assert _slug("Run manifest (`lvu_ext_run.json`)") == "run-manifest-lvu_ext_runjson"


# --- lvu-ext subcommands and flags ------------------------------------------------------


def _help(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "lmms_eval_plugin.cli", *args, "--help"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    assert out.returncode == 0, f"`lvu-ext {' '.join(args)} --help` failed ({out.returncode}): {out.stderr[-2000:]}"
    return out.stdout


@functools.cache
def _subcommands() -> tuple[str, ...]:
    """From `lvu-ext --help`: its `commands:` section (one per line), else argparse's `{a,b}` choices."""
    text = _help()
    section = re.search(r"^(?:sub)?commands:\s*\n((?:[ \t]+\S.*\n?)+)", text, re.M | re.I)
    if section:
        return tuple(re.findall(r"^[ \t]+([a-z][a-z-]*)(?:\s|$)", section.group(1), re.M))
    found = re.search(r"\{([a-z][a-z,-]*)\}", text)
    assert found, f"`lvu-ext --help` lists no subcommands:\n{text}"
    return tuple(found.group(1).split(","))


@functools.cache
def _flags(sub: str, mode: str | None) -> frozenset[str]:
    """Options the parser of `lvu-ext SUB [MODE]` accepts, read from the option lines of its
    --help (a subcommand that prints no usage takes none)."""
    text = _help(sub, *([mode] if mode else []))
    if "usage:" not in text:
        return frozenset()
    flags = {"--help"}
    for line in text.splitlines():
        opt = re.match(r"\s+(-\S.*)", line)
        if opt:
            flags.update(re.findall(r"--[a-z][a-z0-9_-]*", re.split(r"\s{2,}", opt.group(1))[0]))
    return frozenset(flags)


def _commands(text: str) -> list[str]:
    """`lvu-ext ...` command lines: in fenced blocks (continuations joined, comments and what
    follows `&&`, `|`, `;` dropped) and in inline code spans."""
    found = []
    for block in _fenced(text):
        body = re.sub(r"\\\n\s*", " ", block)
        for line in body.splitlines()[1:-1]:
            line = re.split(r"(?:^|\s)#", line, maxsplit=1)[0]
            for piece in re.split(r"&&|\|\||[|;]|\$\(", line):
                found += re.findall(r"\blvu-ext\b[^)`]*", piece)
    for m in INLINE_CODE.finditer(_prose(text)):
        found += re.findall(r"\blvu-ext\b[^)`;|]*", m.group(2).replace("\n", " "))
    return found


def _flag_lists(text: str) -> list[tuple[str, list[str]]]:
    """Paragraphs and list items that start `Flags (`lvu-ext SUB ... --help`):` and name
    flags in code spans: (the command, the flags)."""
    out = []
    for block in re.split(r"\n\s*\n|\n(?=\s*- )", _prose(text)):
        head = re.match(r"\s*(?:- )?Flags \(`(lvu-ext [^`]*)`\):", block)
        if head:
            spans = [m.group(2).replace("\n", " ") for m in INLINE_CODE.finditer(block[head.end():])]
            out.append((head.group(1), [s.split()[0] for s in spans if s.startswith("--")]))
    return out


def _check(command: str, extra_flags=()) -> list[str]:
    words = command.split()
    if len(words) < 2 or words[1] in ("-h", "--help"):
        return []
    sub = words[1]
    if sub not in _subcommands():
        return [f"`{command.strip()}`: lvu-ext has no subcommand {sub!r} (it has {', '.join(_subcommands())})"]
    tokens = [re.sub(r"[=\[\]].*$", "", w.lstrip("[")) for w in words[2:]] + list(extra_flags)
    flags = [t for t in tokens if re.fullmatch(r"--[a-z][a-z0-9_-]*", t)]
    modes = [f for f in flags if sub == "bench" and f in BENCH_MODES]
    if len(modes) > 1:
        return [f"`{command.strip()}`: more than one bench mode {modes}"]
    known = _flags(sub, modes[0] if modes else None) | set(modes)
    return [f"`{command.strip()}`: {flag} is not an option of `lvu-ext {sub}{' ' + modes[0] if modes else ''}`"
            for flag in flags if flag not in known]


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_lvu_ext_commands_and_flags_exist(path):
    text = path.read_text(encoding="utf-8")
    problems = [p for command in _commands(text) for p in _check(command)]
    problems += [p for command, flags in _flag_lists(text) for p in _check(command, flags)]
    assert not problems, f"{_rel(path)}:\n" + "\n".join(problems)


def test_the_flag_checker_sees_a_wrong_flag():
    text = ("Run `lvu-ext report out/ --out r/ --no-such-flag`.\n\n```bash\nlvu-ext bench --workload --videos 2 \\\n"
            "   --frames 4   # --ignored in a comment\nlvu-ext doctr\n```\n\nFlags (`lvu-ext reproduce --help`): `--limit N`, `--bogus`.\n")
    commands = _commands(text)
    assert [c.split()[1] for c in commands] == ["bench", "doctr", "report", "reproduce"]
    problems = [p for c in commands for p in _check(c)] + [p for c, f in _flag_lists(text) for p in _check(c, f)]
    assert len(problems) == 3 and "--no-such-flag" in " ".join(problems) and "'doctr'" in " ".join(problems)
    assert "--bogus" in problems[-1]
    assert "--videos" in _flags("bench", "--workload") and "--videos" not in _flags("bench", None)


# --- model args ---------------------------------------------------------------------------


def _model_args_rows() -> dict[str, str]:
    """{arg: default cell} from every table of docs/model-args.md whose header starts `| arg |`."""
    rows, in_table = {}, False
    for line in _prose((ROOT / "docs" / "model-args.md").read_text(encoding="utf-8")).splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells and cells[0].lower() == "arg":
            in_table = True
            continue
        if not in_table or set(cells[0]) <= set("-: "):
            continue
        names = re.findall(r"`([a-z_][a-z0-9_]*)`", cells[0])
        assert names, f"docs/model-args.md: a row names no arg in backticks: {line}"
        values = re.findall(r"`([^`]*)`", cells[1])
        for i, name in enumerate(names):
            rows[name] = values[i] if len(values) == len(names) else cells[1]
    return rows


def _same_default(field_default, documented: str) -> bool:
    doc = documented.strip().strip("`").lower()
    if isinstance(field_default, bool):
        return doc == str(field_default).lower()
    if isinstance(field_default, (int, float)):
        try:
            return float(doc) == float(field_default)
        except ValueError:
            return False
    return doc == str(field_default).lower()


def test_model_args_page_matches_model_args_py():
    rows = _model_args_rows()
    fields = {f.name: f.default for f in dataclasses.fields(LvuArgs)}
    assert not sorted(set(fields) - set(rows)), f"model args missing from docs/model-args.md: {sorted(set(fields) - set(rows))}"
    assert not sorted(set(rows) - set(fields)), f"docs/model-args.md names args model_args.py lacks: {sorted(set(rows) - set(fields))}"
    wrong = [f"{name}: documented {rows[name]!r}, model_args.py {default!r}" for name, default in fields.items()
             if default not in (None, "") and not _same_default(default, rows[name])]  # None/"": a documented wording
    assert not wrong, "docs/model-args.md defaults differ: " + "; ".join(wrong)


def test_default_comparison_can_fail():
    assert _same_default(1.0, "`1`") and _same_default(True, "`true`") and _same_default("auto", "`auto`")
    assert not _same_default(32, "`16`") and not _same_default(False, "`true`") and not _same_default("vcwe", "`none`")


# --- dataset ids --------------------------------------------------------------------------


def _dataset_paths() -> set[str]:
    paths = set()
    for yml in (ROOT / "tasks").rglob("*.yaml"):
        found = re.search(r"^dataset_path:\s*(\S+)", yml.read_text(encoding="utf-8"), re.M)
        if found and "/" in found.group(1):  # hub ids; the bundled demo and `json` stand-ins are not
            paths.add(found.group(1))
    return paths


def test_docs_name_the_datasets_the_tasks_load():
    real = _dataset_paths()
    assert {"lmms-eval/Video-MME", "sy1998/MLVU_dev"} <= real, real
    benchmarks = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert not [d for d in real if f"`{d}`" not in benchmarks], "docs/benchmarks.md does not name every task's dataset_path"
    wrong = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for dataset in real:
            name = dataset.split("/")[1]
            for m in re.finditer(rf"(?<![\w/$.-])([\w.-]+/{re.escape(name)})(?![\w/-])", text):
                if m.group(1) != dataset:
                    wrong.append(f"{_rel(path)}: {m.group(1)} (the tasks load {dataset})")
    assert not wrong, "; ".join(wrong)


def test_dataset_check_sees_a_wrong_org():
    name = "Video-MME"
    hits = [m.group(1) for m in re.finditer(rf"(?<![\w/$.-])([\w.-]+/{re.escape(name)})(?![\w/-])",
                                            "(lmms-lab/Video-MME, x) `lmms-eval/Video-MME` tasks/Video-MME/x $HF_HOME/Video-MME")]
    assert hits == ["lmms-lab/Video-MME", "lmms-eval/Video-MME"]

