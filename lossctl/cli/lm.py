"""``lossctl lm``: token batches (loss, perplexity, bits per token and byte). Reads the sources
lazily, calls :mod:`lossctl.tokens`, checks, renders, picks the exit code."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from ..errors import ExitCode, UsageError
from .help import Command, examples

LM_HELP = """Token-level cross-entropy of a language-model batch: loss, perplexity, bits per token and byte.

lossctl lm --logits L --labels Y [--shift] [--attention-mask M] [--ignore-index N] [--bytes B]
           [--normalize tokens|sequences|global:N]

L is (B, T, V) or (T, V), vocabulary last (float64/32/16 or bfloat16, e.g. FILE.safetensors:logits);
Y holds token ids, (B, T) or (T,). --shift: position t predicts label t+1 (causal LM, Hugging Face
labels). A position counts unless its label is --ignore-index or its attention mask is 0.

loss = Σ NLL / n over the n counted tokens (torch's F.cross_entropy on the flattened, shifted,
masked batch); --normalize sequences: the mean over sequences of their mean NLL; global:N: Σ NLL / N
(the tokens of a whole gradient-accumulation step). perplexity = exp(loss), bits_per_token =
loss / ln 2, bits_per_byte = Σ NLL / (ln 2 · Σ bytes) with --bytes (a total or one count per
sequence). --per-sample adds the per-sequence table and mean_sequence_perplexity (the mean of
the sequences' perplexities, what Hugging Face evaluate calls mean_perplexity: not the corpus
perplexity). Streams in constant memory: the logits are read and widened block by block."""

FORMATS = ("auto", "table", "json", "plain", "csv")


def register(app: typer.Typer) -> None:
    app.command("lm", help=LM_HELP, short_help="Token loss of a language-model batch: loss, perplexity, bits per byte.", cls=Command,
                epilog=examples("lossctl lm --logits examples/lm/batch.safetensors:logits -t examples/lm/batch.safetensors:labels --shift",
                                "lossctl lm --logits logits.safetensors -t labels.npy --shift --attention-mask mask.npy --bytes bytes.npy",
                                "lossctl lm --logits logits.npy -t labels.npy --shift --per-sample --json"))(lm)


def pick_lm_format(fmt: str, json_: bool, rows: int) -> str:
    fmt = "json" if json_ else fmt
    if fmt not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if rows < 0:
        raise UsageError("--rows: must be 0 or more")
    return ("table" if sys.stdout.isatty() else "plain") if fmt == "auto" else fmt


class Sources:
    """Reads each option's source once (lazily: memory maps, raw bfloat16), keeping origins and paths."""

    def __init__(self, stdin_format: str | None):
        from ..io.source_reader import SourceReader
        from .options import option_name

        self.reader = SourceReader(stdin_format=stdin_format, name=option_name)

    def read(self, name: str, text: str | None, lazy: bool = True):
        if text is None:
            return None
        return self.reader.read(name, text, lazy=lazy)

    @property
    def origins(self):
        return self.reader.origins


@dataclass
class _Checked:
    """What ``--expect*`` and ``-o`` see of an lm result: the loss, per-token values, the gradient."""

    loss: Any
    per_sample: Any
    grad: dict = field(default_factory=dict)
    loss_name: str = "lm"
    reduction: str = "mean"


def check_expect(result, sources: Sources, expect, expect_per_sample, expect_grad, grad_name: str, rtol, atol):
    if expect is None and expect_per_sample is None and expect_grad is None:
        return None
    from ..core.expectations import check_result
    from .loss import parse_expect

    return check_result(
        result,
        expect=parse_expect(expect, sources.reader) if expect is not None else None,
        expect_per_sample=sources.read("expect_per_sample", expect_per_sample, lazy=False),
        expect_grad={grad_name: sources.read("expect_grad", expect_grad, lazy=False)} if expect_grad else None,
        rtol=rtol, atol=atol)


def write_output_file(output: str | None, force: bool, sources: Sources, result, grad: bool) -> None:
    if output is None:
        return
    from ..io.outstream import write_output
    from ..io.writers import check_output_path

    path = Path(output)
    check_output_path(path, sources.reader.paths, force)
    write_output(path, result, grad)


def _page_path(html: str, sources: Sources, force: bool) -> Path:
    from ..io.writers import PAGE_SUFFIXES, check_output_path

    check_output_path(Path(html), sources.reader.paths, force, key="html", suffixes=PAGE_SUFFIXES)
    return Path(html)


def _write_page(page: Path, sources: Sources, call: dict, given: dict, result, force: bool) -> None:
    import shlex

    from ..io.writers import write_page
    from ..render.html import SourceInfo, lm_page

    _page_path(str(page), sources, force)
    infos = [SourceInfo(key, text, tuple(getattr(call[key], "shape", ())),
                        str(getattr(call[key], "encoding", None) or getattr(call[key], "dtype", "")))
             for key, text in given.items() if text is not None and call.get(key) is not None]
    parameters = {k: call[k] for k in ("shift", "ignore_index", "normalize")}
    words = ["lossctl", "lm"] + [w for key, text in given.items() if text is not None
                                 for w in ("--" + key.replace("_", "-"), text)]
    words += ["--shift"] * bool(call["shift"]) + (["--normalize", call["normalize"]] if call["normalize"] != "tokens" else [])
    write_page(page, lm_page(result, infos, parameters, command=shlex.join(words + ["--html", str(page)])))


def lm(
    logits: str = typer.Option(None, "--logits", help="Logits (B, T, V) or (T, V), vocabulary last."),
    labels: str = typer.Option(None, "--labels", "--target", "-t", help="Token ids (B, T) or (T,)."),
    attention_mask: str = typer.Option(None, "--attention-mask", help="1 where a position is real, 0 for padding (shape of the labels)."),
    bytes_: str = typer.Option(None, "--bytes", help="UTF-8 bytes of the text: a total, or one count per sequence (B,)."),
    shift: bool = typer.Option(False, "--shift", help="Position t predicts label t+1 (causal LM): logits[..., :-1, :], labels[..., 1:]."),
    ignore_index: int = typer.Option(-100, "--ignore-index", help="Label value that does not count."),
    normalize: str = typer.Option("tokens", "--normalize", help="Denominator: tokens (counted tokens), sequences (mean of per-sequence means), global:N (Σ NLL / N)."),
    dtype: str = typer.Option("float64", "--dtype", help="Compute in float64 (default) or float32."),
    stdin_format: str = typer.Option(None, "--stdin-format", help="Format of '-' (stdin): npy, npz, csv, tsv, txt, json, yaml."),
    strict: bool = typer.Option(False, "--strict", help="Refuse inputs that only draw a warning: exit 3 instead."),
    format: str = typer.Option("auto", "--format", "-f", help="auto (table on a terminal, plain otherwise), table, json, plain, csv."),
    json_: bool = typer.Option(False, "--json", help="Short for --format json."),
    per_sample: bool = typer.Option(False, "--per-sample", help="Also show the per-sequence table (and per-token NLL in JSON) and mean_sequence_perplexity."),
    grad: bool = typer.Option(False, "--grad", help="Also give d(loss)/d(logits), as torch autograd gives it."),
    explain: bool = typer.Option(False, "--explain", help="Also show the derivation of one token's NLL, then the masking, count and mean."),
    rows: int = typer.Option(3, "--rows", help="Sequences shown in the per-sequence table."),
    output: str = typer.Option(None, "--output", "-o", help="Write the per-token NLL (and with --grad the gradient) to .npy, .npz or .csv."),
    force: bool = typer.Option(False, "--force", help="Allow --output to replace an existing file."),
    expect: str = typer.Option(None, "--expect", help="Expected loss value; exit 1 if it differs."),
    expect_per_sample: str = typer.Option(None, "--expect-per-sample", help="Expected per-token NLL (an array source)."),
    expect_grad: str = typer.Option(None, "--expect-grad", help="Expected gradient of the logits (an array source)."),
    rtol: float = typer.Option(1e-7, "--rtol", help="Relative tolerance, as numpy.isclose."),
    atol: float = typer.Option(1e-9, "--atol", help="Absolute tolerance, as numpy.isclose."),
    html: str = typer.Option(None, "--html", metavar="FILE.html",
                             help="Also write the batch's numbers, one token's derivation and the per-sequence "
                                  "table as one self-contained HTML page (--force to replace a file)."),
) -> None:
    from .. import tokens
    from .loss import strict_inputs

    fmt = pick_lm_format(format, json_, rows)
    if logits is None or labels is None:
        raise UsageError("lm needs --logits and --labels (or --target / -t)")
    sources = Sources(stdin_format)
    call = {"logits": sources.read("logits", logits), "labels": sources.read("labels", labels, lazy=False),
            "attention_mask": sources.read("attention_mask", attention_mask, lazy=False),
            "bytes": sources.read("bytes", bytes_, lazy=False),
            "shift": shift, "ignore_index": ignore_index, "normalize": normalize, "dtype": dtype}
    page = _page_path(html, sources, force) if html is not None else None
    want_grad = grad or expect_grad is not None
    with strict_inputs(strict):
        result = tokens.lm(call, grad=want_grad,
                           per_sample=per_sample or expect_per_sample is not None or output is not None or page is not None,
                           explain=explain or page is not None, origins=sources.origins)
    checked = _Checked(result.loss, result.per_token, {"logits": result.grad} if result.grad is not None else {})
    report = check_expect(checked, sources, expect, expect_per_sample, expect_grad, "logits", rtol, atol)
    write_output_file(output, force, sources, checked, grad)
    if page is not None:
        _write_page(page, sources, call, {"logits": logits, "labels": labels, "attention_mask": attention_mask,
                                          "bytes": bytes_}, result, force)
    if result.note:
        typer.echo(f"note: {result.note}", err=True)
    _render_lm(fmt, result, report, per_sample=per_sample, grad=grad and output is None, explain=explain, rows=rows)
    if report is not None and not report.passed:
        raise typer.Exit(ExitCode.CHECK_FAILED)


def _render_lm(fmt: str, result, report, *, per_sample: bool, grad: bool, explain: bool, rows: int) -> None:
    from ..render import lm as render

    out = sys.stdout
    if fmt == "json":
        render.write_json(out, render.document(result, report, per_sample=per_sample, grad=grad, explain=explain))
        return
    if fmt == "table":
        from rich.console import Console

        from ..render import table

        console = Console(file=out)
        console.print(table.lm_summary(result))
        if per_sample:
            console.print(table.lm_sequences(result, rows))
        if grad:
            console.print(table.gradients(_Checked(result.loss, result.per_token, {"logits": result.grad})))
        if explain:
            console.print(table.lm_steps(result))
        if report is not None:
            console.print(table.check(report))
        return
    if fmt == "csv":
        render.write_csv(out, result, per_sample=per_sample)
    else:
        render.write_plain(out, result, per_sample=per_sample, grad=grad, explain=explain)
    if report is not None:
        from ..render.text import write_check_plain

        write_check_plain(sys.stderr, report)
