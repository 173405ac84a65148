"""Dependency floors stay at or above the first releases with known security fixes, and the
installed versions meet the floors pyproject.toml declares."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

# The first release of each with the fixes vidpipe relies on (see the comments in pyproject).
SECURE_FLOORS = {
    "h11": "0.16",
    "starlette": "0.47.2",
    "urllib3": "2.5",
    "filelock": "3.20.3",
}


def declared() -> dict[str, Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return {req.name.lower(): req for req in requirements}


def floor_of(req: Requirement) -> Version:
    floors = [Version(spec.version) for spec in req.specifier if spec.operator in (">=", "==")]
    assert floors, f"{req.name} has no lower bound in pyproject.toml"
    return max(floors)


@pytest.mark.parametrize("name", sorted(SECURE_FLOORS))
def test_the_declared_floor_excludes_releases_without_the_security_fix(name: str) -> None:
    requirements = declared()
    assert name in requirements, f"{name} is not a declared dependency"
    assert floor_of(requirements[name]) >= Version(SECURE_FLOORS[name])


@pytest.mark.parametrize("name", sorted(SECURE_FLOORS))
def test_the_installed_version_meets_the_declared_floor(name: str) -> None:
    req = declared()[name]
    assert req.specifier.contains(version(name), prereleases=True), (name, version(name))
