"""The docs cannot drift from the code: generated references, README, settings and import guide."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tenure.record.schema import KINDS
from tenure.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUN_MAKE_DOCS = "run `make docs` and commit the result"


def _load_generator() -> ModuleType:
    path = ROOT / "scripts" / "cli_reference.py"
    spec = importlib.util.spec_from_file_location("cli_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = _load_generator()
GENERATED: dict[Path, str] = generator.generate()
COMMANDS: list[str] = generator.command_paths()


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


@pytest.mark.parametrize(
    "relative", ["docs/cli.md", "docs/settings.md", "docs/record.md", "docs/signals.md"]
)
def test_generated_reference_is_current(relative: str) -> None:
    path = ROOT / relative
    assert path.exists(), f"{relative} is missing: {RUN_MAKE_DOCS}"
    assert _read(path) == GENERATED[Path(relative)], f"{relative} is out of date: {RUN_MAKE_DOCS}"


def test_every_command_is_in_the_cli_reference() -> None:
    text = _read(DOCS / "cli.md")
    assert len(COMMANDS) > 1
    missing = [path for path in COMMANDS if f"## {path}\n" not in text]
    assert not missing, f"docs/cli.md lacks {missing}: {RUN_MAKE_DOCS}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_readme(command: str) -> None:
    readme = ROOT / "README.md"
    assert readme.exists(), "README.md is missing"
    text = re.sub(r"\s+", " ", _read(readme))
    assert command in text, f"README.md never mentions `{command}`; say what it is for"


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _environment_variables_read() -> dict[str, list[str]]:
    """TENURE_* names in string literals anywhere in src/ -> the files that name them."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "src").rglob("*.py")):
        for constant in _string_constants(path):
            for name in re.findall(r"\bTENURE_[A-Z0-9][A-Z0-9_]*\b", constant):
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_environment_variable_is_declared_and_documented() -> None:
    used = _environment_variables_read()
    declared = {setting.env for setting in SETTINGS}
    assert declared <= used.keys(), "the scan should at least see the declarations in settings.py"
    undeclared = {name: files for name, files in used.items() if name not in declared}
    assert not undeclared, f"declare these in tenure.settings.SETTINGS: {undeclared}"
    documented = _read(DOCS / "settings.md")
    missing = sorted(name for name in used if f"`{name}`" not in documented)
    assert not missing, f"docs/settings.md lacks {missing}: {RUN_MAKE_DOCS}"


def _kinds_with_mapping_examples() -> set[str]:
    kinds: set[str] = set()
    for path in sorted((ROOT / "mappings").rglob("*.y*ml")):
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict) and isinstance(loaded.get("kind"), str):
            kinds.add(loaded["kind"])
    return kinds


def _mentioned_in(text: str, kind: str) -> bool:
    """Named as code (`events`), in a command (tenure import events) or a mapping (kind: events)."""
    name = re.escape(kind)
    return re.search(rf"`{name}`|tenure import {name}\b|kind:\s*{name}\b", text) is not None


def test_every_kind_has_a_mapping_example_or_import_docs() -> None:
    guide = DOCS / "importing.md"
    text = _read(guide)
    examples = _kinds_with_mapping_examples()
    unknown = sorted(examples - KINDS.keys())
    assert not unknown, f"mappings/ name kinds that do not exist: {unknown}"
    missing = [k for k in KINDS if k not in examples and not _mentioned_in(text, k)]
    where = "docs/importing.md" if guide.exists() else "docs/importing.md (missing)"
    assert not missing, f"no mapping example in mappings/ and no mention in {where}: {missing}"


def test_every_signal_is_documented() -> None:
    from tenure.signals import catalog

    text = _read(DOCS / "signals.md")
    missing = [name for name in catalog(["k"]).names() if f"`{name}`" not in text]
    assert not missing, f"docs/signals.md lacks {missing}: {RUN_MAKE_DOCS}"


def test_every_trigger_kind_and_condition_name_is_documented() -> None:
    from tenure.triggers.definitions import ATTRIBUTES, CALENDAR, HEALTH, KINDS

    text = _read(DOCS / "triggers.md")
    missing = [f"`{n}`" for n in (*KINDS, *CALENDAR, *HEALTH, *ATTRIBUTES) if f"`{n}`" not in text]
    assert not missing, f"docs/triggers.md lacks {missing}"
