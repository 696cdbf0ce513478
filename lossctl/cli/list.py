"""``lossctl list``: the registry as a table, JSON or plain text."""

from __future__ import annotations

import sys

import typer

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
    """Print the registry in ``fmt`` (table, json, plain, markdown)."""
    from ..render.list import write_list

    write_list(sys.stdout, registry_rows(), fmt)
