"""README.md stays true: the registry table is the generated one, every loss is documented."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import lossctl

ROOT = Path(__file__).resolve().parents[1]


def _updater():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "tests/tools/update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_registry_table_is_generated():
    text = (ROOT / "README.md").read_text()
    assert _updater().render(text) == text, "run: python tests/tools/update_readme.py"


def test_every_loss_and_alias_is_in_the_readme():
    text = (ROOT / "README.md").read_text()
    for spec in lossctl.registry().specs:
        for name in (spec.name, *spec.aliases):
            assert f"`{name}`" in text


def test_readme_start_commands_match_ci():
    text = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    test_command = "pip install -e '.[test]' && python -m pytest"
    assert test_command in text
    assert test_command in ci
