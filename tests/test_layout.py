"""The tree's size limits: no module of vidpipe/ over 800 lines, no class over 400. A new
feature that grows past them fails here, not in a later clean-up."""

from __future__ import annotations

import ast
from pathlib import Path

import vidpipe

PACKAGE = Path(vidpipe.__file__).parent
MAX_MODULE_LINES = 800
MAX_CLASS_LINES = 400


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_package_has_modules_to_check() -> None:
    assert len(_modules()) > 20


def test_no_module_of_the_package_is_over_800_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): lines
        for path in _modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_class_of_the_package_is_over_400_lines() -> None:
    long = {}
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.name}"] = lines
    assert long == {}
