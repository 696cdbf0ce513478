"""``lossctl record LOSS ... --to SUITE.yaml``: append a loss call to a check suite as a pinned case."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from ..errors import UsageError
from .help import examples
from .options import Opt
from .loss import read_call
from .typer_commands import loss_group


def register(app: typer.Typer) -> None:
    app.add_typer(loss_group(
        "record", _record_body,
        extra=(
            Opt("to", ("--to",), str | None, None, "The suite file to append the case to (created when missing). Required.", "Record"),
            Opt("name", ("--name",), str | None, None, "The case's name (default: LOSS-N).", "Record"),
        ),
        omit=frozenset({"expect", "expect_per_sample", "expect_grad", "output", "force"}),
        help="Append a loss call to a check suite as a new case pinned to its current values.\n\n"
             "lossctl record LOSS [the loss command's options] --to SUITE.yaml [--name NAME]\n\n"
             "Inputs given as files stay references (paths rewritten relative to the suite); "
             "literals and standard input are written inline. The case expects the current "
             "loss, and also the per-sample values with --per-sample and the gradient with "
             "--grad; non-default --rtol/--atol are kept. Prints the result as the loss "
             "command does; 'lossctl check SUITE.yaml' then passes.",
        epilog=examples("lossctl record ce --logits examples/ce/seed_logits.npy --target examples/ce/seed_target.csv --to suite.yaml",
                        "lossctl record ce --logits '[[2,0]]' --target '[0]' --per-sample --to suite.yaml --name tiny"),
        short_help="Append a loss call to a check suite as a pinned case.",
    ), name="record")


def _record_body(spec, opts: dict[str, Any]) -> int:
    from ..api import compute
    from ..io.writers import check_target
    from ..suite.record import record_case
    from .loss import output_format, render_result

    opts = dict(opts)
    to_text = opts.pop("to")
    name = opts.pop("name")
    if not to_text:
        raise UsageError(f"record {spec.name}: missing --to SUITE.yaml (the suite to add the case to)")
    to = Path(to_text)
    fmt = output_format(opts)
    if name is not None and not name.strip():
        raise UsageError("--name: empty")

    call, reader = read_call(spec, opts)
    check_target(to_text, what=f"--to {to_text}", inputs=reader.paths, make_dirs=True)  # before computing
    if spec.command_keys is not None:  # lm, linear-ce: token batches, computed as their commands do
        from ..tokens import suite_result

        result = suite_result(call, grad=opts["grad"], origins=reader.origins)
    else:
        result = compute(call, grad=opts["grad"], explain=opts["explain"], rows=opts["rows"], origins=reader.origins)
    name = record_case(spec, opts, call, result, to_text, name, per_sample=opts["per_sample"], grad=opts["grad"])

    render_result(fmt, result, None, per_sample=opts["per_sample"], grad=opts["grad"],
                  explain=opts.get("explain", False) and spec.command_keys is None, rows=opts["rows"],
                  precision=opts.get("precision"))
    sys.stdout.flush()
    sys.stderr.write(f"recorded case '{name}' in {to} (run: lossctl check {to})\n")
    return 0
