"""The supported version ranges, read from lvu_ext's own installed metadata (the
`dependencies` of pyproject.toml), so the doctor and the installer never disagree."""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

# The packages whose version the doctor reports, in this order.
CHECKED = ("lmms-eval", "transformers", "torch", "torchvision", "accelerate", "av", "filelock")


def supported_ranges(distribution: str = "lvu_ext") -> dict[str, Requirement]:
    ranges = {}
    for text in metadata.requires(distribution) or []:
        req = Requirement(text)
        if req.marker is None:  # extras (the test tools) are not what a run needs
            ranges[canonicalize_name(req.name)] = req
    return ranges


def installed_version(name: str) -> Version | None:
    try:
        return Version(metadata.version(name))
    except (metadata.PackageNotFoundError, InvalidVersion):
        return None


def admits(req: Requirement, version: Version) -> bool:
    return req.specifier.contains(version, prereleases=True)


def describe(req: Requirement | None) -> str:
    """'>=0.7.3,<0.8': lower bound first, as people write it."""
    if req is None:
        return "any"
    return ",".join(str(s) for s in sorted(req.specifier, key=lambda s: (s.operator.startswith("<"), str(s)))) or "any"
