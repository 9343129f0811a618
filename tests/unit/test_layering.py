"""The import rules of docs/design.md ("What may import what") that keep scoring workers light
and the sandbox's view of the project small."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ARCHER = Path(__file__).resolve().parents[2] / "archer"


def module_level_imports(path: Path) -> set[str]:
    """Top-level module names imported at module level (not inside functions or TYPE_CHECKING)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []:
            if isinstance(sub, ast.Import):
                names |= {alias.name for alias in sub.names}
            elif isinstance(sub, ast.ImportFrom) and sub.level == 0 and sub.module:
                names.add(sub.module)
    return names


def roots(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("path", sorted((ARCHER / "verifiers" / "boundary").glob("*.py")), ids=lambda p: p.name)
def test_what_runs_inside_the_sandbox_imports_the_standard_library_only(path):
    third_party = {r for r in roots(module_level_imports(path)) if r not in sys.stdlib_module_names}
    assert third_party <= {"plain"}, third_party  # plain is its neighbour inside the sandbox


def test_types_config_checks_and_ops_depend_on_nothing_heavier_than_torch():
    assert roots(module_level_imports(ARCHER / "types.py")) <= set(sys.stdlib_module_names)
    assert roots(module_level_imports(ARCHER / "config_checks.py")) <= set(sys.stdlib_module_names)
    assert roots(module_level_imports(ARCHER / "ops.py")) - set(sys.stdlib_module_names) == {"torch"}


@pytest.mark.parametrize("path", sorted((ARCHER / "verifiers").glob("*.py")), ids=lambda p: p.name)
def test_verifiers_never_import_torch_at_module_level(path):
    assert "torch" not in roots(module_level_imports(path))


def test_the_trainer_never_imports_a_concrete_strategy():
    imported = module_level_imports(ARCHER / "module.py")
    assert not any(name.startswith(("archer.constraints", "archer.advantages")) for name in imported)


def test_the_countdown_verifier_loads_without_torch():
    # scoring workers import verifiers; the Countdown task's rules live in its verifier, not in archer.data
    import subprocess

    code = "import sys, archer.verifiers.countdown; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ARCHER.parent)
