"""Every public function and method of train/ and eval/ says in a docstring what it returns
or does: a reader learns a function from its first line."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(path for package in ("train", "eval") for path in (ROOT / package).rglob("*.py"))


def public_functions(tree: ast.Module):
    """Module-level functions, and the methods of module-level classes, without a leading _."""
    for node in tree.body:
        members = node.body if isinstance(node, ast.ClassDef) and node.name[0] != "_" else []
        for item in [node, *members]:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name[0] != "_":
                yield item


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_public_functions_have_docstrings(path):
    tree = ast.parse(path.read_text())
    missing = [
        f"{f.name} (line {f.lineno})" for f in public_functions(tree) if not ast.get_docstring(f)
    ]
    assert not missing, f"{path.relative_to(ROOT)}: no docstring on {', '.join(missing)}"
