"""Version combinations known to break a run, each with its reason and its fix.

A package inside its supported range can still be broken by a sibling's release (the
first entry: filelock 4.3 against lmms-eval 0.7.x). Add a row when one is found; remove
it when no supported version of the other side is affected any more.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.specifiers import SpecifierSet

from lmms_eval_plugin.doctor.ranges import installed_version


@dataclass(frozen=True)
class KnownBad:
    package: str
    versions: str  # the broken versions of `package`
    with_package: str | None  # ... when this package is installed in `with_versions`
    with_versions: str
    why: str
    fix: str

    def matches(self) -> str | None:
        """A description of the installed combination when it is this bad one, else None."""
        version = installed_version(self.package)
        if version is None or not SpecifierSet(self.versions).contains(version, prereleases=True):
            return None
        if self.with_package is None:
            return f"{self.package} {version}"
        other = installed_version(self.with_package)
        if other is None or not SpecifierSet(self.with_versions).contains(other, prereleases=True):
            return None
        return f"{self.package} {version} with {self.with_package} {other}"


KNOWN_BAD = (
    KnownBad(
        "filelock", ">=4.3", "lmms-eval", "<0.8",
        "lmms-eval's evaluator imports filelock._api, which filelock 4.3 removed: every evaluation fails "
        "('No module named filelock._api') and lmms-eval still exits 0",
        "pip install 'filelock<4.3'  (or reinstall with -c constraints.txt)",
    ),
    KnownBad(
        "transformers", "<5.18", None, "",
        "no mm_encoder_outputs before 5.18: generate raises and forward silently drops the video features",
        "pip install 'transformers>=5.18,<6'",
    ),
    KnownBad(
        "lmms-eval", "<0.7.3", None, "",
        "the task YAMLs are generated from lmms-eval 0.7.3; older releases use another Video-MME dataset_path and "
        "LongVideoBench cache_dir, so the variants would look for videos where the harness did not put them",
        "pip install 'lmms-eval>=0.7.3,<0.8'",
    ),
)
