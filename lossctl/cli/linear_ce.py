"""``lossctl linear-ce``: fused linear cross-entropy. Reads the sources lazily, calls
:mod:`lossctl.tokens`, checks, renders as every loss, picks the exit code."""

from __future__ import annotations

import typer

from ..errors import ExitCode, UsageError
from .help import Command, examples
from .lm import check_expect, pick_lm_format, Sources, write_output_file

LCE_HELP = """Fused linear cross-entropy: cross_entropy(H·Wᵀ + b, y) without forming the (N, V) logits.

lossctl linear-ce --hidden H --lm-head W [--lm-head-bias b] --target Y

Mirrors torch.nn.functional.linear_cross_entropy (torch 2.13): H (N, D) hidden states, W (V, D)
the LM head, b (V,); target class indices (N,) or probabilities (N, V); --weight, --ignore-index
(default: none, i.e. -100 for class indices), --label-smoothing, --reduction. The vocabulary is
processed in blocks with a running log-sum-exp; --grad gives d(loss)/d(hidden, lm_head, lm_head_bias)."""


def register(app: typer.Typer) -> None:
    app.command("linear-ce", help=LCE_HELP, short_help="Fused linear cross-entropy (F.linear_cross_entropy).", cls=Command,
                epilog=examples("lossctl linear-ce --hidden '[[1,0],[0,1]]' --lm-head '[[1,2],[3,4],[5,6]]' --target '[0,2]'",
                                "lossctl linear-ce --hidden h.npy --lm-head w.npy --lm-head-bias b.npy --target y.npy --grad",
                                "lossctl linear-ce --hidden h.npy --lm-head w.npy --target y.npy --reduction none --json"))(linear_ce)


def linear_ce(
    hidden: str = typer.Option(None, "--hidden", help="Hidden states H (N, D)."),
    lm_head: str = typer.Option(None, "--lm-head", help="The LM head's weight W (V, D)."),
    lm_head_bias: str = typer.Option(None, "--lm-head-bias", help="The LM head's bias b (V,)."),
    target: str = typer.Option(None, "--target", "-t", help="Class indices (N,) or probabilities (N, V)."),
    weight: str = typer.Option(None, "--weight", help="Rescaling weight, one per class (V,)."),
    ignore_index: int = typer.Option(None, "--ignore-index", help="Target value that is ignored (default: none, -100 for class indices)."),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing", help="Mix the target with the uniform distribution: (1-ε)·t + ε/V."),
    reduction: str = typer.Option("mean", "--reduction", "-r", help="Reduction: mean, sum, none."),
    dtype: str = typer.Option("float64", "--dtype", help="Compute in float64 (default) or float32."),
    stdin_format: str = typer.Option(None, "--stdin-format", help="Format of '-' (stdin): npy, npz, csv, tsv, txt, json, yaml."),
    strict: bool = typer.Option(False, "--strict", help="Refuse inputs that only draw a warning: exit 3 instead."),
    format: str = typer.Option("auto", "--format", "-f", help="auto (table on a terminal, plain otherwise), table, json, plain, csv."),
    json_: bool = typer.Option(False, "--json", help="Short for --format json."),
    per_sample: bool = typer.Option(False, "--per-sample", help="Also show the per-sample (reduction='none') values."),
    grad: bool = typer.Option(False, "--grad", help="Also give d(loss)/d(hidden, lm_head, lm_head_bias), as torch autograd."),
    rows: int = typer.Option(3, "--rows", help="Samples shown in per-sample tables."),
    output: str = typer.Option(None, "--output", "-o", help="Write per-sample values (and with --grad the gradients) to .npy, .npz or .csv."),
    force: bool = typer.Option(False, "--force", help="Allow --output to replace an existing file."),
    expect: str = typer.Option(None, "--expect", help="Expected loss value; exit 1 if it differs."),
    expect_per_sample: str = typer.Option(None, "--expect-per-sample", help="Expected per-sample values (an array source)."),
    expect_grad: str = typer.Option(None, "--expect-grad", help="Expected gradient of the hidden states (an array source)."),
    rtol: float = typer.Option(1e-7, "--rtol", help="Relative tolerance, as numpy.isclose."),
    atol: float = typer.Option(1e-9, "--atol", help="Absolute tolerance, as numpy.isclose."),
) -> None:
    from .. import tokens
    from .loss import render_result, strict_inputs

    fmt = pick_lm_format(format, json_, rows)
    if hidden is None or lm_head is None or target is None:
        raise UsageError("linear-ce needs --hidden, --lm-head and --target")
    if reduction not in ("mean", "sum", "none"):
        raise UsageError(f"--reduction: linear-ce takes one of mean, sum, none; got {reduction!r}")
    sources = Sources(stdin_format)
    call = {"hidden": sources.read("hidden", hidden), "lm_head": sources.read("lm_head", lm_head),
            "lm_head_bias": sources.read("lm_head_bias", lm_head_bias),
            "target": sources.read("target", target, lazy=False), "weight": sources.read("weight", weight, lazy=False),
            "ignore_index": ignore_index, "label_smoothing": label_smoothing, "reduction": reduction, "dtype": dtype}
    want_grad = grad or expect_grad is not None
    with strict_inputs(strict):
        result = tokens.linear_ce_result(call, grad=want_grad, origins=sources.origins)
    report = check_expect(result, sources, expect, expect_per_sample, expect_grad, "hidden", rtol, atol)
    write_output_file(output, force, sources, result, grad)
    render_result(fmt, result, report, per_sample=per_sample and output is None, grad=grad and output is None,
            explain=False, rows=rows)
    if report is not None and not report.passed:
        raise typer.Exit(ExitCode.CHECK_FAILED)
