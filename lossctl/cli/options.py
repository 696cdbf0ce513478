"""Options shared by every loss command, declared once.

Each entry is ``(python name, option names, type, default, help, panel)``; the
factory in :mod:`lossctl.cli.loss_commands` turns them (and each loss's own
``Param``s) into Typer options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..checks import DEFAULT_ATOL, DEFAULT_RTOL
from ..registry import PREDICTION_KINDS

INPUT_HELP = {
    "logits": "Raw scores (logits).",
    "probs": "Probabilities.",
    "log_probs": "Log-probabilities.",
    "pred": "Predictions (regression).",
    "target": "Target: class indices, class probabilities or values.",
}
SOURCE_HELP = "A file (.npy .npz .csv .tsv .txt .json .yaml, FILE:KEY), '-' for stdin, or an inline literal like '[0,2]'."


@dataclass(frozen=True)
class Opt:
    name: str
    decls: tuple[str, ...]
    type: Any
    default: Any
    help: str
    panel: str
    hidden: bool = False


def input_option(name: str, hidden: bool = False) -> Opt:
    decls = ("--" + name.replace("_", "-"),) + (("-t",) if name == "target" else ())
    return Opt(name, decls, str | None, None, f"{INPUT_HELP.get(name, name.replace('_', ' ').capitalize() + '.')} {SOURCE_HELP}", "Inputs", hidden)


COMMON_OPTIONS: tuple[Opt, ...] = (
    Opt("stdin_format", ("--stdin-format",), str | None, None, "Format of '-' (stdin): npy, npz, csv, tsv, txt, json, yaml. Sniffed when omitted.", "Inputs"),
    Opt("dtype", ("--dtype",), str | None, None, "Compute in float64 (default; float32 under --convention keras, as Keras does) or float32.", "Parameters"),
    Opt("convention", ("--convention",), str | None, None, "Whose numbers: torch, keras, optax or sklearn (default: torch, or the loss's home framework).", "Parameters"),
    Opt("sample_weight", ("--sample-weight",), str | None, None, "Per-sample weights (Keras and scikit-learn conventions). An array source.", "Parameters"),
    Opt("strict", ("--strict",), bool, False, "Refuse inputs that only draw a warning (NaN or inf values, target probabilities that do not sum to 1): exit 3 instead.", "Inputs"),
    Opt("l2", ("--l2",), float | None, None, "Add the L2 penalty 0.5·α·Σw² over --params (α = this value).", "Regularisation"),
    Opt("l1", ("--l1",), float | None, None, "Add the L1 penalty β·Σ|w| over --params (β = this value).", "Regularisation"),
    Opt("params", ("--params",), str | None, None, "Model parameters for --l1/--l2: one array, or an .npz (JSON/YAML mapping) of several.", "Regularisation"),
    Opt("exclude_params", ("--exclude-params",), str, "bias", "Parameters whose name contains this get no penalty (as the seed skips biases); '' for none.", "Regularisation"),
    Opt("format", ("--format", "-f"), str, "auto", "Output format: auto (table on a terminal, plain otherwise), table, json, plain, csv.", "Output"),
    Opt("json", ("--json",), bool, False, "Short for --format json.", "Output"),
    Opt("per_sample", ("--per-sample",), bool, False, "Also show the per-sample (reduction='none') values.", "Output"),
    Opt("grad", ("--grad",), bool, False, "Also show d(loss)/d(prediction), as PyTorch's autograd gives it.", "Output"),
    Opt("explain", ("--explain",), bool, False, "Also show the step-by-step derivation.", "Output"),
    Opt("rows", ("--rows",), int, 3, "Samples shown by --explain and in per-sample tables.", "Output"),
    Opt("output", ("--output", "-o"), str | None, None, "Write per-sample values (and with --grad the gradient) to .npy, .npz or .csv.", "Output"),
    Opt("force", ("--force",), bool, False, "Allow --output to replace an existing file.", "Output"),
    Opt("expect", ("--expect",), str | None, None, "Expected loss value; exit 1 if it differs.", "Checks"),
    Opt("expect_per_sample", ("--expect-per-sample",), str | None, None, "Expected per-sample values (an array source).", "Checks"),
    Opt("expect_grad", ("--expect-grad",), str | None, None, "Expected gradient of the prediction input (an array source).", "Checks"),
    Opt("rtol", ("--rtol",), float, DEFAULT_RTOL, "Relative tolerance, as numpy.isclose.", "Checks"),
    Opt("atol", ("--atol",), float, DEFAULT_ATOL, "Absolute tolerance, as numpy.isclose.", "Checks"),
)

__all__ = ["Opt", "COMMON_OPTIONS", "input_option", "PREDICTION_KINDS"]
