"""Does `pip install lvu_ext` resolve on a linux aarch64 GPU node (Grace Hopper / Blackwell)?

Runs pip's resolver for that platform on the project's ranges (pyproject.toml), wheels only,
as an aarch64 machine would see PyPI. A few of lmms-eval's dependencies publish no wheel at
all, only a source archive of pure Python that builds anywhere; the resolver cannot take a
source archive for another platform, so those are named in PURE_PYTHON_SDISTS and their
own requirements resolved in their place. Exit 0 when everything resolves."""

import re
import subprocess
import sys
import tempfile
from importlib import metadata

import tomllib
from packaging.requirements import Requirement

# glibc 2.28 and older, as pip on an aarch64 node with glibc 2.28 (RHEL 8 / Ubuntu 20.04 and later) accepts
PLATFORMS = [f"manylinux_2_{minor}_aarch64" for minor in range(28, 16, -1)] + ["manylinux2014_aarch64", "linux_aarch64"]
# source-only, pure Python (checked by reading their setup files): they install on any platform
PURE_PYTHON_SDISTS = {"transformers-stream-generator", "sqlitedict", "rouge", "jsonlines", "pycocoevalcap", "zss", "latex2sympy2"}


def requirements() -> list[str]:
    project = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
    out = [r for r in project if Requirement(r).name != "lmms-eval"]
    for text in metadata.requires("lmms-eval") or []:  # lmms-eval's own, minus the source-only pure-Python ones
        req = Requirement(text)
        if req.marker is not None and "extra" in str(req.marker):
            continue
        if req.name.lower() in PURE_PYTHON_SDISTS:
            continue
        out.append(text)
    return out


def main() -> int:
    platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
    with tempfile.TemporaryDirectory() as target:
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:", *platform_args,
               "--python-version", "3.11", "--implementation", "cp", "--target", target, *requirements()]
        done = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if not line.startswith("WARNING: Location")]
    would = next((line for line in lines if line.startswith("Would install")), "")
    if done.returncode != 0:
        print("\n".join(lines[-15:]))
        print("aarch64: the dependencies do NOT resolve to wheels for linux aarch64")
        return 1
    torch = re.search(r"\btorch-(\S+)", would)
    print(f"aarch64: resolves ({len(would.split()) - 2} packages, torch {torch.group(1) if torch else '?'}); decord is not needed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
