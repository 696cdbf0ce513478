"""``lossctl linear-ce``: fused linear cross-entropy. Reads the sources lazily, calls
:mod:`lossctl.tokens`, checks, renders as every loss, picks the exit code."""

from __future__ import annotations

from typing import Any

import typer

from ..errors import ExitCode

LCE_HELP = """Fused linear cross-entropy: cross_entropy(H·Wᵀ + b, y) without forming the (N, V) logits.

lossctl linear-ce --hidden H --lm-head W [--lm-head-bias b] --target Y

Mirrors torch.nn.functional.linear_cross_entropy (torch 2.13): H (N, D) hidden states, W (V, D)
the LM head, b (V,); target class indices (N,) or probabilities (N, V); --weight, --ignore-index
(default: none, i.e. -100 for class indices), --label-smoothing, --reduction. The vocabulary is
processed in blocks with a running log-sum-exp; --grad gives d(loss)/d(hidden, lm_head, lm_head_bias)."""


def register(app: typer.Typer) -> None:
    from .help import examples
    from .token_command import register_command

    register_command(app, "linear-ce", _linear_ce_body, help=LCE_HELP,
                     short_help="Fused linear cross-entropy (F.linear_cross_entropy).",
                     epilog=examples("lossctl linear-ce --hidden '[[1,0],[0,1]]' --lm-head '[[1,2],[3,4],[5,6]]' --target '[0,2]'",
                                       "lossctl linear-ce --hidden examples/lm/linear_ce.npz:hidden --lm-head examples/lm/linear_ce.npz:lm_head "
                                       "--lm-head-bias examples/lm/linear_ce.npz:lm_head_bias --target examples/lm/linear_ce.npz:target --grad",
                                       "lossctl linear-ce --hidden examples/lm/linear_ce.npz:hidden --lm-head examples/lm/linear_ce.npz:lm_head "
                                       "--target examples/lm/linear_ce.npz:target --reduction none --json"))


def _linear_ce_body(spec, opts: dict[str, Any]) -> int:
    from pathlib import Path

    from .. import tokens
    from .loss import executor, render_result, strict_inputs
    from .token_command import check, output_stream, read_token_call

    fmt, call, reader = read_token_call(spec, opts)
    want_grad = opts["grad"] or opts["expect_grad"] is not None
    # on Dask the gradients go to shards next to -o, not into it
    shards = (opts.get("backend") or "local") == "dask" and opts["grad"] and opts["output"] is not None \
        and opts["expect_grad"] is None
    sink = output_stream(opts, reader, grad=opts["grad"] and not shards)
    try:
        with strict_inputs(opts["strict"]):
            result = tokens.linear_ce_result(call, grad=want_grad, origins=reader.origins,
                                             executor=executor(opts, Path(opts["output"]) if shards else None))
        report = check(result, reader, opts, "hidden")
        if sink is not None:
            sink.commit(result)
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    render_result(fmt, result, report, per_sample=opts["per_sample"] and sink is None, grad=opts["grad"] and sink is None,
            explain=False, rows=opts["rows"], precision=opts.get("precision"))
    return ExitCode.CHECK_FAILED if report is not None and not report.passed else ExitCode.OK
