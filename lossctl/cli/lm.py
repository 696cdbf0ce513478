"""``lossctl lm``: token batches (loss, perplexity, bits per token and byte). Reads the sources
lazily, calls :mod:`lossctl.tokens`, checks, renders, picks the exit code."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from ..errors import ExitCode

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



def register(app: typer.Typer) -> None:
    from .help import examples
    from .token_command import register_command

    register_command(app, "lm", _lm_body, help=LM_HELP,
                     short_help="Token loss of a language-model batch: loss, perplexity, bits per byte.",
                     epilog=examples("lossctl lm --logits examples/lm/batch.safetensors:logits -t examples/lm/batch.safetensors:labels --shift",
                                       "lossctl lm --logits examples/lm/batch.safetensors:logits -t examples/lm/batch.safetensors:labels "
                                       "--shift --attention-mask examples/lm/batch.safetensors:attention_mask "
                                       "--bytes examples/lm/batch.safetensors:bytes",
                                       "lossctl lm --logits examples/lm/batch.safetensors:logits -t examples/lm/batch.safetensors:labels "
                                       "--shift --per-sample --json"))


@dataclass
class _Checked:
    """What ``--expect*`` and ``-o`` see of an lm result: the loss, per-token values, the gradient."""

    loss: Any
    per_sample: Any
    grad: dict = field(default_factory=dict)
    loss_name: str = "lm"
    reduction: str = "mean"


def _page_path(html: str, reader, force: bool) -> Path:
    from ..io.writers import PAGE_SUFFIXES, check_output_path

    check_output_path(Path(html), reader.paths, force, key="html", suffixes=PAGE_SUFFIXES)
    return Path(html)


def _write_page(page: Path, reader, call: dict, opts: dict, result) -> None:
    import shlex

    from ..io.writers import write_page
    from ..render.html import SourceInfo, lm_page

    _page_path(str(page), reader, opts["force"])
    given = {k: opts[k] for k in ("logits", "labels", "attention_mask", "bytes")}
    infos = [SourceInfo(key, text, tuple(getattr(call[key], "shape", ())),
                        str(getattr(call[key], "encoding", None) or getattr(call[key], "dtype", "")))
             for key, text in given.items() if text is not None and call.get(key) is not None]
    parameters = {k: call[k] for k in ("shift", "ignore_index", "normalize")}
    words = ["lossctl", "lm"] + [w for key, text in given.items() if text is not None
                                 for w in ("--" + key.replace("_", "-"), text)]
    words += ["--shift"] * bool(call["shift"]) + (["--normalize", call["normalize"]] if call["normalize"] != "tokens" else [])
    write_page(page, lm_page(result, infos, parameters, command=shlex.join(words + ["--html", str(page)])))


def _per_token_shape(call: dict) -> tuple[int, ...]:
    import numpy as np

    shape = list(np.shape(call["labels"]))
    if call.get("shift") and shape:
        shape[-1] = max(0, shape[-1] - 1)
    return tuple(shape)


def _lm_body(spec, opts: dict[str, Any]) -> int:
    import numpy as np

    from .. import tokens
    from .loss import executor, strict_inputs
    from .token_command import check, output_stream, read_token_call

    fmt, call, reader = read_token_call(spec, opts)
    page = _page_path(opts["html"], reader, opts["force"]) if opts["html"] else None
    want_grad = opts["grad"] or opts["expect_grad"] is not None
    # the gradient is streamed (never whole in memory): into -o here, as shards next to -o on Dask
    streamed = opts["output"] is not None and opts["grad"] and opts["expect_grad"] is None
    shards = streamed and (opts.get("backend") or "local") == "dask"
    sink = output_stream(opts, reader, grad=opts["grad"] and not shards)
    grad_out = None
    try:
        if streamed and not shards:
            # the gradient goes to the file block by block: it is never whole in memory
            dtype = np.dtype(call.get("dtype") or "float64")
            per_token = sink.array("per_sample", _per_token_shape(call), dtype)
            logits_shape = tuple(np.shape(call["logits"]))
            grad_out = sink.array("grad_logits", logits_shape, dtype).row_writer()
        with strict_inputs(opts["strict"]):
            result = tokens.lm(call, grad=want_grad, grad_out=grad_out,
                               per_sample=opts["per_sample"] or opts["expect_per_sample"] is not None
                               or sink is not None or page is not None,
                               explain=opts["explain"] or page is not None, origins=reader.origins,
                               executor=executor(opts, Path(opts["output"]) if shards else None))
        checked = _Checked(result.loss, result.per_token,
                           {"logits": result.grad} if result.grad is not None and not streamed else {})
        report = check(checked, reader, opts, "logits")
        if sink is not None:
            if grad_out is not None:
                per_token.write(np.asarray(result.per_token))
            from ..io.writers import check_output_path

            check_output_path(sink.path, reader.paths, opts["force"])  # again: --expect-* files are inputs too
            sink.commit(checked)
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    if page is not None:
        _write_page(page, reader, call, opts, result)
    if result.note:
        typer.echo(f"note: {result.note}", err=True)
    from ..render.numbers import precision

    with precision(opts.get("precision")):  # the digits of every number in a table
        _render_lm(fmt, result, report, per_sample=opts["per_sample"], grad=opts["grad"] and sink is None,
                   explain=opts["explain"], rows=opts["rows"])
    return ExitCode.CHECK_FAILED if report is not None and not report.passed else ExitCode.OK


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
