"""Write docs/api.md: the public Python API of lossctl (``lossctl.__all__``), generated from the code.

    python scripts/make_api_doc.py          # rewrite docs/api.md
    python scripts/make_api_doc.py --check  # exit 1 if docs/api.md is not current

tests/test_api.py runs the check.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lossctl  # noqa: E402

HEADER = """# The Python API

Generated from the code by `scripts/make_api_doc.py` (`tests/test_api.py` checks it is
current). `import lossctl` gives these names and no others (`dir(lossctl)`); the package
ships `py.typed`, so type checkers read its annotations.
"""


def _doc(obj) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def _signature(name: str, obj) -> str:
    sig = inspect.signature(obj)
    return f"lossctl.{name}{sig}".replace("'", "")


def section(name: str, obj) -> str:
    parts = [f"## `{name}`", ""]
    if isinstance(obj, type) and issubclass(obj, enum.Enum):
        parts += [_doc(obj), "", "| name | value |", "| --- | --- |"]
        parts += [f"| `{m.name}` | {m.value} |" for m in obj]
    elif dataclasses.is_dataclass(obj):
        parts += [_doc(obj), "", "| field | type |", "| --- | --- |"]
        parts += [f"| `{f.name}` | `{f.type}` |".replace(" | None", " \\| None") for f in dataclasses.fields(obj)]
    elif isinstance(obj, type):
        bases = ", ".join(b.__name__ for b in obj.__bases__)
        parts += [f"```python\nclass lossctl.{name}({bases})\n```", "", _doc(obj)]
    elif callable(obj):
        parts += [f"```python\n{_signature(name, obj)}\n```", "", _doc(obj)]
    else:
        parts += [f"`{obj!r}`"]
    return "\n".join(parts).rstrip() + "\n"


def render() -> str:
    names = [n for n in lossctl.__all__ if n != "__version__"]
    return HEADER + "\n" + "\n".join(section(n, getattr(lossctl, n)) for n in names)


def main(argv: list[str]) -> int:
    path = ROOT / "docs" / "api.md"
    text = render()
    if "--check" in argv:
        if not path.exists() or path.read_text() != text:
            sys.stderr.write("docs/api.md is not current: run python scripts/make_api_doc.py\n")
            return 1
        return 0
    path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
