"""``lossctl gradcheck LOSS ...``: compare a loss's analytic gradient with finite differences."""

from __future__ import annotations

import sys
from typing import Any

import typer

from ..errors import ExitCode, UsageError
from .help import examples
from .options import Opt, pick_format
from .loss import read_call
from .typer_commands import loss_group


def register(app: typer.Typer) -> None:
    app.add_typer(loss_group(
        "gradcheck", _gradcheck_body,
        extra=(
            Opt("tol", ("--tol",), float, 1e-6, "Largest error allowed, |analytic - numeric| / max(1, |numeric|).", "Gradcheck"),
            Opt("max_elements", ("--max-elements",), int | None, None, "Check at most this many elements per input (evenly spaced).", "Gradcheck"),
        ),
        omit=frozenset({"per_sample", "grad", "explain", "rows", "output", "force", "expect", "expect_per_sample",
                        "expect_grad", "rtol", "atol"}),
        help="Compare the analytic gradient with central finite differences.\n\n"
             "lossctl gradcheck LOSS [the loss command's options] [--tol 1e-6]\n\n"
             "For every differentiable input and element: step h = cbrt(eps)*max(1, |x|), "
             "the loss evaluated in float64 (the sum with --reduction none), one-sided "
             "differences where x+h or x-h leaves the loss's domain. Prints the worst "
             "absolute and relative error with its index; exit 1 when the largest "
             "|analytic - numeric| / max(1, |numeric|) is above --tol.",
        epilog=examples("lossctl gradcheck ce --logits '[[2,0,-1]]' --target '[0]'",
                        "lossctl gradcheck huber --pred examples/families/regression.csv:pred "
                        "--target examples/families/regression.csv:target --delta 0.5 --tol 1e-8",
                        "lossctl gradcheck bce --probs examples/bce/s1_sigmoid.npy --target examples/bce/s1_target.tsv --json"),
        short_help="Check a loss's analytic gradient against finite differences.",
    ), name="gradcheck")


def _gradcheck_body(spec, opts: dict[str, Any]) -> int:
    from ..gradcheck import gradcheck
    from ..render.gradcheck import describe, document

    opts = dict(opts)
    tol = opts.pop("tol")
    max_elements = opts.pop("max_elements")
    if not tol >= 0:
        raise UsageError(f"--tol: expected a number ≥ 0, got {tol}")
    if max_elements is not None and max_elements < 1:
        raise UsageError("--max-elements: must be 1 or more")
    fmt = pick_format(opts["format"], opts["json"], ("auto", "table", "plain", "json"))
    call, reader = read_call(spec, opts)
    report = gradcheck(call, tol=tol, origins=reader.origins, max_elements=max_elements)
    if fmt == "json":
        from ..render.text import write_json

        write_json(sys.stdout, document(report))
    else:
        for line in describe(report):
            sys.stdout.write(line + "\n")
    return 0 if report.passed else int(ExitCode.CHECK_FAILED)
