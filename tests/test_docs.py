"""docs/INTERNALS.md is the module map: every module of the package is named in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "smalltrain"


def named(doc: str, module: Path) -> bool:
    """Whether ``module`` appears by name (``stem`` or ``stem.py``) as a word of the map."""
    pattern = rf"(^|[\s/`(,]){re.escape(module.stem)}(\.py)?($|[\s`),/])"
    return re.search(pattern, doc, flags=re.MULTILINE) is not None


def test_internals_names_every_module() -> None:
    doc = (ROOT / "docs" / "INTERNALS.md").read_text(encoding="utf-8")
    modules = [p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"]
    assert len(modules) > 100  # the walk found the package
    missing = [str(p.relative_to(PACKAGE)) for p in modules if not named(doc, p)]
    assert missing == [], f"docs/INTERNALS.md does not name: {missing}"


def test_the_check_can_fail() -> None:
    assert not named("`config` (override coercion)", Path("configure.py"))
    assert named("`config` (override coercion)", Path("config.py"))
