"""``lossctl list``: the registry as a table, JSON or plain text."""

from __future__ import annotations

import sys

import typer

from ..errors import UsageError
from .help import Command, examples


def register(app: typer.Typer) -> None:
    @app.command("list", cls=Command, epilog=examples("lossctl list", "lossctl list --format plain | cut -f1",
                                                      "lossctl list --json"))
    def list_losses(
        format: str = typer.Option("auto", "--format", "-f",
                                   help="auto (table on a terminal, plain otherwise), table, json, plain or markdown."),
        json_: bool = typer.Option(False, "--json", help="Short for --format json."),
    ) -> None:
        """List the registered losses, their aliases, inputs and parameters."""
        from .options import pick_format

        render_list(pick_format(format, json_, LIST_FORMATS))


LIST_FORMATS = ("auto", "table", "json", "plain", "markdown")


def registry_rows() -> list[dict]:
    """``{"name", "aliases", "inputs", "params", ...}`` for every registered loss (the JSON of ``lossctl list``)."""
    from ..losses import registry
    from .options import option_name, spell

    rows = []
    for spec in registry().specs:
        rows.append({
            "name": spec.name,
            "aliases": list(spec.aliases),
            "inputs": [k for k in spec.inputs],
            "params": [
                {"name": p.name, "option": option_name(p.name), "type": p.kind, "default": p.default, "help": spell(p.help)}
                for p in spec.all_params
            ] + [{"name": "reduction", "option": "--reduction", "type": "choice", "default": "mean",
                  "choices": list(spec.reductions), "help": "Reduction over samples."}],
            "mirrors": spell(spec.mirrors),
            "summary": spell(spec.summary),
            "conventions": {
                name: {"mirrors": spell(spec.convention(name).mirrors), "difference": spell(spec.convention(name).difference),
                       "default": name == spec.home, "declared": bool(spec.conventions)}
                for name in spec.convention_names
            },
        })
    return rows


def render_list(fmt: str) -> None:
    rows = registry_rows()
    if fmt == "json":
        import json

        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    if fmt == "markdown":
        sys.stdout.write(markdown_table(rows))
        return
    if fmt == "plain":
        for r in rows:
            inputs = " ".join("--" + i.replace("_", "-") for i in r["inputs"])
            sys.stdout.write(f"{r['name']}\t{r['mirrors']}\t{inputs}\n")
        return
    if fmt != "table":
        raise UsageError(f"--format: expected table, json, plain or markdown, got {fmt!r}")
    from rich.console import Console
    from rich.table import Table

    t = Table(title="lossctl losses", title_justify="left")
    # a loss's name stays whole (never folded mid-word); the other cells wrap between words
    t.add_column("name", no_wrap=True, min_width=max(len(r["name"]) for r in rows))
    for h in ("aliases", "mirrors", "inputs", "parameters"):
        t.add_column(h, overflow="fold")
    for r in rows:
        t.add_row(r["name"], ", ".join(r["aliases"]), r["mirrors"],
                  " ".join("--" + i.replace("_", "-") for i in r["inputs"]),
                  " ".join(p["option"] for p in r["params"]))
    Console(file=sys.stdout).print(t)


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
