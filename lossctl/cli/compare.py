"""``lossctl compare LOSS ...``: a loss command's inputs, run under every convention that has the loss."""

from __future__ import annotations

import sys
from typing import Any

COMPARE_HELP = (
    "Run a loss under every framework convention that has it (torch, keras, optax, sklearn).\n\n"
    "lossctl compare LOSS [the loss command's inputs and parameters] [--per-sample]\n\n"
    "Prints each framework's value and, for each pair that differs, the first step of the "
    "derivation where they part and why (a clip, a renormalisation, the float32 cast, the "
    "per-sample definition or the reduction), naming the first sample concerned. A framework "
    "that cannot compute the call (it lacks the input kind or a parameter) is listed as refused."
)


def register(app) -> None:
    from .help import examples
    from .typer_commands import loss_group

    app.add_typer(loss_group(
        "compare", _compare_body, extra=(),
        omit=frozenset({"grad", "explain", "output", "force", "expect", "expect_per_sample", "expect_grad", "rtol",
                        "atol", "convention"}),
        help=COMPARE_HELP,
        epilog=examples("lossctl compare bce --probs '[0.9,0.2,1.0]' --target '[1,0,1]'",
                        "lossctl compare mse --pred examples/families/regression.csv:pred "
                        "--target examples/families/regression.csv:target --per-sample",
                        "lossctl compare ce --logits examples/ce/seed_logits.npy --target examples/ce/seed_target.csv --json"),
        short_help="Run a loss under every framework's convention and say why they differ.",
    ), name="compare")


def _compare_body(spec, opts: dict[str, Any]) -> int:
    from ..compare import compare
    from .loss import output_format, read_call, strict_inputs

    opts = {"grad": False, "explain": False, "output": None, "force": False, "expect": None,
            "expect_per_sample": None, "expect_grad": None, **opts}
    fmt = output_format(opts)
    call, reader = read_call(spec, opts)
    with strict_inputs(opts.get("strict", False)):
        cmp = compare(call, origins=reader.origins)
    if fmt == "json":
        from ..render.text import compare_document, write_json

        write_json(sys.stdout, compare_document(cmp, per_sample=opts["per_sample"]))
    elif fmt in ("plain", "csv"):
        from ..render.text import write_compare_plain

        write_compare_plain(sys.stdout, cmp, per_sample=opts["per_sample"])
    else:
        from rich.console import Console

        from ..render.table import comparison

        Console(file=sys.stdout).print(comparison(cmp, per_sample=opts["per_sample"], rows=max(opts["rows"], 10)))
    return 0
