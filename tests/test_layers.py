"""Reads do not know the API: a selector module (and the marketplace's stats, cache generations
and row shapes, which the selectors build on) imports neither the API layer nor DRF, so the
pages, the admin, the import and the API all share the same reads."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
READ_MODULES = sorted(
    [
        *ROOT.glob("*/selectors.py"),
        ROOT / "marketplace" / "stats.py",
        ROOT / "marketplace" / "generations.py",
        ROOT / "marketplace" / "rows.py",
    ]
)
API_MODULES = ("config.api", "rest_framework", "drf_spectacular")


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def api_module(name: str) -> bool:
    top = name.split(".")
    return (
        any(name == api or name.startswith(f"{api}.") for api in API_MODULES)
        or (len(top) > 1 and top[1] == "api")  # an app's api package
    )


def test_the_read_modules_are_found():
    assert len(READ_MODULES) >= 6
    assert all(path.is_file() for path in READ_MODULES)


@pytest.mark.parametrize("path", READ_MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_reads_do_not_import_the_api(path):
    assert sorted(filter(api_module, imported_modules(path))) == []
