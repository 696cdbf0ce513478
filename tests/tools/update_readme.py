"""Rewrite README.md's generated registry table from the registry (tests/test_docs.py checks it)."""

from __future__ import annotations

import re
from pathlib import Path

from lossctl.cli.list import registry_rows
from lossctl.render.list import conventions_table, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"(<!-- registry:start -->\n).*?(<!-- registry:end -->)", re.S)
CONVENTIONS = re.compile(r"(<!-- conventions:start -->\n).*?(<!-- conventions:end -->)", re.S)


def render(text: str) -> str:
    rows = registry_rows()
    text = BLOCK.sub(lambda m: m.group(1) + markdown_table(rows) + m.group(2), text)
    return CONVENTIONS.sub(lambda m: m.group(1) + conventions_table(rows) + m.group(2), text)


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
