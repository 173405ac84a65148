"""The tree's limits: no module of vidpipe/ over 800 lines, no class over 400, no import
cycle in vidpipe/ or bench/ (lazy imports included). A new feature that breaks them fails
here, not in a later clean-up."""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

import vidpipe

PACKAGE = Path(vidpipe.__file__).parent
BENCH = PACKAGE.parent / "bench"
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


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that can run: at module level and inside functions (lazy imports make
    cycles too, only later), not those under `if TYPE_CHECKING:`."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for inner in ast.walk(node))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skipped:
            yield node


def _import_graph(root: Path, base: Path) -> dict[str, set[str]]:
    """Module -> the modules under `root` it imports (`base`: the folder on `sys.path` its
    names are relative to). `from pkg import sub` counts as importing `pkg.sub` when that is
    a module (a package's own `__init__` runs first for any of its modules, and is not
    counted as a dependency of them)."""
    paths = {_module_name(p, base): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
                continue
            from_ = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                from_ = ".".join([*up, from_] if from_ else up)
            for alias in node.names:
                sub = f"{from_}.{alias.name}"
                deps.add(sub if sub in paths else from_)
        graph[name] = {d for d in deps if d in paths and d != name}
    return graph


def _cycle(root: Path, base: Path) -> list[str]:
    """One import cycle among `root`'s modules ([] when there is none)."""
    try:
        graphlib.TopologicalSorter(_import_graph(root, base)).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []


TYPE_ONLY = "if TYPE_CHECKING:\n    from .. import a\n"


def test_the_cycle_check_finds_a_cycle_through_a_relative_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nfrom .. import a\n")
    assert set(_cycle(pkg, tmp_path)) == {"pkg.a", "pkg.sub.b"}
    (pkg / "sub" / "b.py").write_text("def late():\n    from .. import a\n")
    assert set(_cycle(pkg, tmp_path)) == {"pkg.a", "pkg.sub.b"}  # a lazy import closes it too
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\n" + TYPE_ONLY)
    assert _cycle(pkg, tmp_path) == []


def test_the_cycle_check_finds_scripts_that_import_each_other(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text("import harness\nfrom link import rows\n")
    (tmp_path / "link.py").write_text("from harness import Row\n")
    (tmp_path / "harness.py").write_text("")
    assert _cycle(tmp_path, tmp_path) == []
    (tmp_path / "harness.py").write_text("from run import main\n")
    assert set(_cycle(tmp_path, tmp_path)) in ({"run", "harness"}, {"run", "link", "harness"})


def test_no_import_cycle_among_the_modules_of_the_package_or_the_benchmarks() -> None:
    # The scripts of bench/ run as `python bench/X.py`: their folder is on sys.path.
    assert sum(map(len, _import_graph(BENCH, BENCH).values())) > 5
    assert _cycle(PACKAGE, PACKAGE.parent) == []
    assert _cycle(BENCH, BENCH) == []
