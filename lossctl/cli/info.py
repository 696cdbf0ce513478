"""``lossctl info``: entropy, cross-entropy, KL and Jensen–Shannon of distributions; self-information.

The numbers come from :mod:`lossctl.core.information`; this module reads the sources (with the
loss commands' reader), picks the output format and renders.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from ..errors import ExitCode, UsageError
from .help import Command, examples
from ..core.call import BY_NAME
from .options import SOURCE_HELP

INFO_FORMATS = ("auto", "table", "json", "plain", "csv")

INFO_HELP = """Information measures of discrete distributions, per row and averaged over rows.

lossctl info --p P [--q Q] [--base e|2|10]

With P alone: the entropy H(P). With Q too: H(P), H(Q), the cross-entropy H(P,Q),
KL(P‖Q), KL(Q‖P) and the Jensen-Shannon divergence JS(P,Q) (through the mixture
M = (P+Q)/2, always finite), and the identity H(P,Q) = H(P) + KL(P‖Q) checked per
row (exit 1 if it fails; the largest |residual| is shown). Conventions as torch.xlogy:
0·log 0 = 0, and KL(P‖Q) = inf where q = 0 < p.

The classes are the last dimension (--dim to choose another); every other dimension
indexes rows. Probabilities must be in [0, 1]; a row that does not sum to 1 draws a
warning (--normalize divides it by its sum, --strict refuses it). --p-logits/--q-logits
take raw scores, turned into log-probabilities by a stable log-softmax.

lossctl info --event-probs X: the self-information -log p of each event instead.

Output: plain prints one line per measure, 'H(P) 0.6931471805599453' (the means);
json has per_row values, means and the identity check; csv one line per row."""


def register(app: typer.Typer) -> None:
    app.command("info", help=INFO_HELP, short_help="Entropy, cross-entropy, KL and JS divergence of distributions.", cls=Command,
                epilog=examples("lossctl info --p examples/info/coin.yaml:p --base 2",
                                "lossctl info --p examples/info/scissors.csv:p --q examples/info/scissors.csv:q --format table --precision 4",
                                "lossctl info --event-probs '[0.5, 0.25, 0.125]' --base 2"))(info)


def info(
    p: str | None = typer.Option(None, "--p", help=f"Distribution P, probabilities. {SOURCE_HELP}"),
    q: str | None = typer.Option(None, "--q", help="Distribution Q, probabilities (same shape as P)."),
    p_logits: str | None = typer.Option(None, "--p-logits", help="P as logits (log-softmax over the class dimension)."),
    q_logits: str | None = typer.Option(None, "--q-logits", help="Q as logits (log-softmax over the class dimension)."),
    event_probs: str | None = typer.Option(None, "--event-probs", help="Probabilities of single events: print -log p of each."),
    base: str = typer.Option("e", "--base", "-b", help="Logarithm base: e (nats), 2 (bits) or 10 (hartleys)."),
    dim: int = typer.Option(-1, "--dim", help="The class dimension (default: the last)."),
    normalize: bool = typer.Option(False, "--normalize", help="Divide each probability row by its sum."),
    sum_tol: float = typer.Option(1e-6, "--sum-tol", help="Rows whose sum is off 1 by more than this draw a warning."),
    strict: bool = typer.Option(False, "--strict", help="Refuse rows that do not sum to 1 (exit 3) instead of warning."),
    stdin_format: str | None = typer.Option(None, "--stdin-format", help="Format of '-' (stdin): npy, npz, csv, tsv, txt, json, yaml."),
    format: str = typer.Option("auto", "--format", "-f", help="auto (table on a terminal, plain otherwise), table, json, plain, csv."),
    json_: bool = typer.Option(False, "--json", help="Short for --format json."),
    rows: int = typer.Option(10, "--rows", help="Rows shown in the table's per-row part."),
    precision: int | None = typer.Option(None, "--precision", metavar="N", help=BY_NAME["precision"].help),
) -> int:
    from ..core import information as infolib
    from ..io.source_reader import SourceReader
    from .loss import strict_inputs
    from .options import option_name

    from ..render.numbers import precision as table_precision
    from .options import pick_format, table_digits

    fmt = pick_format(format, json_, INFO_FORMATS)
    digits = table_digits(precision)
    if rows < 0:
        raise UsageError("--rows: must be 0 or more")
    if not sum_tol >= 0:
        raise UsageError("--sum-tol: must be 0 or more")
    base = infolib.parse_base(base)
    for name, probs_text, logits_text in (("p", p, p_logits), ("q", q, q_logits)):
        if probs_text is not None and logits_text is not None:
            raise UsageError(f"--{name} and --{name}-logits: give one of them")
    reader = SourceReader(stdin_format=stdin_format, name=option_name)

    if event_probs is not None:
        given = [o for o, v in (("--p", p), ("--q", q), ("--p-logits", p_logits), ("--q-logits", q_logits)) if v is not None]
        if given:
            raise UsageError(f"--event-probs and {given[0]}: self-information is computed on its own; give one or the other")
        probs = reader.read("event_probs", event_probs)
        values = infolib.self_information(probs, base, origin=reader.origins["event_probs"])
        from ..render.info import write_events

        with table_precision(digits):  # the digits of every number in a table
            write_events(sys.stdout, fmt, base, probs, values, rows)
        return ExitCode.OK

    if p is None and p_logits is None:
        what = "--q/--q-logits need P as well: " if (q is not None or q_logits is not None) else ""
        raise UsageError(f"{what}give --p (probabilities) or --p-logits, or --event-probs")

    def load(name: str, text: str | None, logits: bool):
        if text is None:
            return None
        array = reader.read(name, text)
        kw = {"logits": array} if logits else {"probs": array}
        return infolib.distribution(**kw, dim=dim, origin=reader.origins[name], sum_tol=sum_tol, normalize=normalize)

    with strict_inputs(strict):
        P = load("p_logits", p_logits, True) if p is None else load("p", p, False)
        Q = load("q_logits", q_logits, True) if q is None else load("q", q, False)
    result = infolib.information(P, Q, base=base)
    from ..render.info import write_info

    with table_precision(digits):
        write_info(sys.stdout, fmt, result, rows)
    if result.identity_holds is False:
        _stderr(f"check failed: H(P,Q) = H(P) + KL(P‖Q) does not hold: max |residual| {result.max_abs_residual!r} "
                f"at row {result.worst_row}")
        return ExitCode.CHECK_FAILED
    return ExitCode.OK


def _stderr(msg: str) -> None:
    try:
        sys.stderr.write(msg + "\n")
    except (OSError, ValueError):
        pass
