"""Structure rules: product code never imports tests/, the sandbox never imports provisioning/, and no import cycle
inside the sandbox hides behind a function-level import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("provisioning", "sandbox", "conformance")


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in (ROOT / package).rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _parse(source: str) -> ast.Module:
    """ast.parse, again after CPython 3.11's "AST constructor recursion depth mismatch" SystemError: the AST
    state is shared by the interpreter's threads (python/cpython#106905), and any other thread formatting a
    traceback parses source too (3.11's caret anchors), e.g. a retry logged by a background thread meanwhile."""
    for _ in range(4):
        try:
            return ast.parse(source)
        except SystemError:
            continue
    return ast.parse(source)


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(module-level, function-level) imported module names; `if TYPE_CHECKING:` blocks excluded."""
    tree = _parse(path.read_text())
    top: set[str] = set()
    lazy: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            names = []
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [child.module]
            elif isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            (lazy if in_function else top).update(names)
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree, False)
    return top, lazy


def test_product_code_never_imports_tests():
    paths = [ROOT / "tasks.py"] + [p for package in PRODUCT for p in _modules(package).values()]
    for path in paths:
        top, lazy = _imports(path)
        assert not [m for m in top | lazy if m == "tests" or m.startswith("tests.")], path


def test_the_sandbox_never_imports_provisioning():
    for path in _modules("sandbox").values():
        top, lazy = _imports(path)
        assert not [m for m in top | lazy if m.startswith("provisioning")], path


def test_no_sandbox_import_cycle_hides_behind_a_function_level_import():
    modules = _modules("sandbox")
    graph = {name: {m for m in _imports(path)[0] if m in modules} for name, path in modules.items()}

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = []
    for name, path in modules.items():
        assert name not in reachable(name), f"module-level import cycle through {name}"
        for target in _imports(path)[1]:
            if target in modules and (name in reachable(target) or name in _imports(modules[target])[1]):
                cycles.append(f"{name} -> {target}")
    assert not cycles, cycles
