"""The declared ranges (pyproject.toml) against the versions known to break a run, and
the tested set (constraints.txt) that the README and CI install."""

from __future__ import annotations

import os
from importlib import metadata

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from cli_runner import REPO


def _ranges() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]] + [Requirement(r) for r in project["optional-dependencies"]["test"]]
    return {canonicalize_name(r.name): r for r in reqs}


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


@pytest.mark.parametrize("package,version,why", [
    ("transformers", "5.17.0", "no mm_encoder_outputs: generate raises, forward drops the video"),
    ("lmms-eval", "0.7.2", "another Video-MME dataset_path and LongVideoBench cache_dir than the generated YAMLs"),
    ("filelock", "4.3.1", "removed filelock._api, which lmms-eval 0.7.3's evaluator imports"),
    ("filelock", "4.3.0", "the release that removed filelock._api"),
    ("transformers", "6.0.0", "a major release nobody has tried"),
    ("lmms-eval", "0.8.0", "a minor release of a 0.x harness nobody has tried"),
])
def test_known_bad_versions_are_excluded(package, version, why):
    req = _ranges()[package]
    assert not req.specifier.contains(Version(version), prereleases=True), f"{package} {version} admitted ({why})"


def test_the_tested_versions_are_admitted():
    pins = _pins()
    for name, req in _ranges().items():
        assert name in pins, f"constraints.txt does not pin {name}, a declared dependency"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} (tested) is outside {req}"


@pytest.mark.parametrize("package,version", [("transformers", "5.17.0"), ("lmms-eval", "0.7.2"), ("filelock", "4.3.1")])
def test_the_doctor_table_names_each_known_bad_version(package, version):
    from packaging.specifiers import SpecifierSet

    from lmms_eval_plugin.doctor.known_bad import KNOWN_BAD

    rows = [bad for bad in KNOWN_BAD if bad.package == package]
    assert any(SpecifierSet(bad.versions).contains(Version(version)) for bad in rows), f"doctor does not flag {package} {version}"


@pytest.mark.skipif(os.environ.get("LVU_EXT_PINNED_INSTALL") != "1",
                    reason="only where the install used constraints.txt (.ci/run sets LVU_EXT_PINNED_INSTALL=1)")
def test_this_environment_is_the_tested_set():
    pins = _pins()
    for name in _ranges():
        installed = Version(metadata.version(name))
        assert installed == pins[name], f"{name}: installed {installed}, constraints.txt pins {pins[name]}"
