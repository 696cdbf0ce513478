"""``lossctl list``'s output, and the README's two registry tables (tests/test_docs.py keeps them equal)."""

from __future__ import annotations

from typing import TextIO

from ..errors import UsageError


def write_list(out: TextIO, rows: list[dict], fmt: str) -> None:
    """The rows of :func:`lossctl.cli.list.registry_rows` as a table, JSON, plain lines or Markdown."""
    if fmt == "json":
        import json

        json.dump(rows, out, indent=2)
        out.write("\n")
        return
    if fmt == "markdown":
        out.write(markdown_table(rows))
        return
    if fmt == "plain":
        for r in rows:
            inputs = " ".join("--" + i.replace("_", "-") for i in r["inputs"])
            out.write(f"{r['name']}\t{r['mirrors']}\t{inputs}\n")
        return
    if fmt != "table":
        raise UsageError(f"--format: expected table, json, plain or markdown, got {fmt!r}")
    from rich.console import Console
    from rich.table import Table

    t = Table(title="lossctl losses", title_justify="left", caption="conventions: * the default (--convention)")
    # a loss's name stays whole (never folded mid-word); the other cells wrap between words
    t.add_column("name", no_wrap=True, min_width=max(len(r["name"]) for r in rows))
    for h in ("aliases", "mirrors", "inputs", "parameters", "conventions"):
        t.add_column(h, overflow="fold")
    for r in rows:
        t.add_row(r["name"], ", ".join(r["aliases"]), r["mirrors"],
                  " ".join("--" + i.replace("_", "-") for i in r["inputs"]),
                  " ".join(p["option"] for p in r["params"]),
                  " ".join(f + ("*" if c["default"] else "") for f, c in r["conventions"].items()))
    Console(file=out).print(t)


def markdown_table(rows: list[dict]) -> str:
    """The registry as the Markdown table in README.md (tests/test_docs.py keeps them equal)."""
    lines = ["| loss | aliases | mirrors | inputs | parameters |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        inputs = " ".join(f"`--{i.replace('_', '-')}`" for i in r["inputs"])
        params = " ".join(f"`{p['option']}`" for p in r["params"])
        aliases = ", ".join(f"`{a}`" for a in r["aliases"])
        lines.append(f"| `{r['name']}` | {aliases} | `{r['mirrors']}` | {inputs} | {params} |")
    return "\n".join(lines) + "\n"


def conventions_table(rows: list[dict]) -> str:
    """The loss × framework table in README.md: each cell the framework's name for the loss and
    the one-line difference (tests/test_docs.py keeps it equal to the registry)."""
    from ..core.registry import FRAMEWORKS

    lines = ["| loss | " + " | ".join(FRAMEWORKS) + " |", "| --- |" + " --- |" * len(FRAMEWORKS)]
    for r in rows:
        conventions = r["conventions"]
        if list(conventions) == ["torch"] and not conventions["torch"].get("declared", True):
            continue
        cells = []
        for f in FRAMEWORKS:
            c = conventions.get(f)
            if c is None:
                cells.append("—")
            else:
                home = " (default)" if c["default"] and f != "torch" else ""
                cells.append(f"`{c['mirrors']}`{home}: {c['difference']}".replace("|", "\\|"))
        lines.append(f"| `{r['name']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
