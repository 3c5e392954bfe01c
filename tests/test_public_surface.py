"""Every package's `__all__` is its public surface (httpx `test_exported_members`)."""

from __future__ import annotations

import ast
import importlib
import types
from pathlib import Path

import pytest

import atalaia

PACKAGE_ROOT = Path(atalaia.__file__).parent


def declares_all(init: Path) -> bool:
    """True when the `__init__.py` assigns `__all__` at module level (read, not run)."""
    tree = ast.parse(init.read_text(encoding="utf-8"), filename=str(init))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


def packages_with_all() -> list[str]:
    names = []
    for init in sorted(PACKAGE_ROOT.rglob("__init__.py")):
        if declares_all(init):
            parts = init.parent.relative_to(PACKAGE_ROOT.parent).parts
            names.append(".".join(parts))
    return names


PACKAGES = packages_with_all()


def test_finds_the_packages_that_declare_a_public_surface() -> None:
    assert "atalaia.core.detectors" in PACKAGES
    assert "atalaia.adapters.db.repositories" in PACKAGES


@pytest.mark.parametrize("name", PACKAGES)
class TestExportedMembers:
    def test_exports_every_name_it_lists(self, name: str) -> None:
        package = importlib.import_module(name)
        missing = [member for member in package.__all__ if not hasattr(package, member)]
        assert missing == []

    def test_lists_each_name_once(self, name: str) -> None:
        exported = importlib.import_module(name).__all__
        assert all(isinstance(member, str) for member in exported)
        assert len(exported) == len(set(exported))

    def test_lists_every_public_name_it_imports(self, name: str) -> None:
        package = importlib.import_module(name)
        public = {
            member
            for member, value in vars(package).items()
            if not member.startswith("_")
            and not isinstance(value, types.ModuleType)
            and getattr(value, "__module__", name).startswith("atalaia.")
        }
        assert sorted(public - set(package.__all__)) == []
