"""One name, one meaning: no class, type alias or UPPER_CASE constant of vidpipe's core is
defined at the top level of two modules (the emulator stands apart on purpose: it mirrors
Mux, not vidpipe, and is checked on its own)."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vidpipe"
NAMED = re.compile(r"_?[A-Z]\w*")  # classes, type aliases, constants (public or not)


def top_level_names(source: str) -> list[str]:
    names: list[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if NAMED.fullmatch(n)]


def definitions(package: Path, *, apart: tuple[str, ...]) -> dict[str, list[str]]:
    """Each name and the modules that define it, for every module of `package` outside
    the subpackages named in `apart`."""
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package.parent)
        if any(part in apart for part in module.parts[1:]):
            continue
        for name in top_level_names(path.read_text(encoding="utf-8")):
            where[name].append(str(module))
    return where


def test_the_check_finds_a_name_defined_in_two_modules(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("class Outcome: pass\nLIMIT = 1\n_Private = int\nname = 2\n")
    (package / "sub" / "b.py").write_text("Outcome = str\nLIMIT: int = 2\n")
    (package / "apart").mkdir()
    (package / "apart" / "c.py").write_text("class Outcome: pass\n")
    twice = {n: w for n, w in definitions(package, apart=("apart",)).items() if len(w) > 1}
    assert twice == {
        "Outcome": ["pkg/a.py", "pkg/sub/b.py"],
        "LIMIT": ["pkg/a.py", "pkg/sub/b.py"],
    }


def test_each_core_class_and_constant_is_defined_in_one_module() -> None:
    twice = {n: w for n, w in definitions(PACKAGE, apart=("emulator",)).items() if len(w) > 1}
    assert twice == {}
