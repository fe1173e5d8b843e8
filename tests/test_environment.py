"""The pinned environment: every dependency that setup.cfg declares is pinned in constraints.txt, within its
declared range, so that the README's install command reproduces the documented numbers."""

from __future__ import annotations

import configparser

import pytest
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def declared() -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in cfg["options.extras_require"].values():
        lines += extra.splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def pinned() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt line {line!r} is not an exact pin (name==version)"
            pins[canonicalize_name(name)] = version
    return pins


@pytest.mark.parametrize("requirement", declared(), ids=str)
def test_every_declared_dependency_is_pinned_within_its_range(requirement):
    pins = pinned()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement.name} is in setup.cfg but not in constraints.txt: run tools/lock.sh"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"constraints.txt pins {requirement.name}=={pins[name]}, outside setup.cfg's {requirement.specifier}")


def test_the_readme_and_ci_install_from_the_lock():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    install = 'pip install torch==2.13.0 && pip install -c constraints.txt -e ".[dev]"'
    assert install in readme
    assert "pip install -q torch==2.13.0" in ci and 'pip install -q -c constraints.txt -e ".[dev]"' in ci
    assert "python -m pytest -q" in readme and ci.rstrip().endswith("python -m pytest -q")
