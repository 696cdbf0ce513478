"""The body of every loss command: read the sources, compute, check, render, write."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

from ..core.call import BY_NAME, COMPUTE_GROUPS, array_keys
from ..core.expectations import check_result
from ..core.registry import LossSpec
from ..errors import ExitCode, InputError, InputWarning, ReductionWarning, UsageError
from ..io.source_reader import SourceReader
from .options import check_precision, option_name, spell
from ..render import FORMATS


def not_computed(key: str) -> bool:
    """Whether ``key`` is a shared key that does not go to compute() (output, checks, execution)."""
    return key in BY_NAME and BY_NAME[key].group not in COMPUTE_GROUPS


def output_format(opts: dict[str, Any]) -> str:
    """The concrete format of a loss command's output (``auto`` resolved); checks ``--rows`` too."""
    from .options import pick_format

    fmt = pick_format(opts["format"], opts["json"], FORMATS)
    if opts["rows"] < 0:
        raise UsageError("--rows: must be 0 or more")
    for key in ("rtol", "atol"):
        if key in opts and not opts[key] >= 0:
            raise UsageError(f"--{key}: expected a number ≥ 0, got {opts[key]}")
    check_precision(opts.get("precision"))
    return fmt


def run_loss(spec: LossSpec, opts: dict[str, Any]) -> int:
    fmt = output_format(opts)

    call, reader = read_call(spec, opts)
    if opts["grad"] or opts["expect_grad"] is not None:
        conv = spec.convention(call.get("convention") or spec.home)
        if not conv.differentiates:
            from ..core.frameworks import framework_label

            raise UsageError(f"--grad: {framework_label(conv)} has no gradient (scikit-learn's metrics are not differentiated)")
    from . import views

    views.check_options(opts, fmt, reader.paths)
    output, to_stdout = _output_path(opts["output"], fmt)
    backend = opts.get("backend") or "local"
    # On Dask the gradient goes to shards next to the output, not into it.
    grad_shards = backend == "dask" and opts["grad"] and output is not None
    sink = None
    if output is not None:
        from ..io.outstream import OutputStream
        from ..io.writers import check_output_path

        check_output_path(output, reader.paths, opts["force"])
        sink = OutputStream(output, grad=opts["grad"] and not grad_shards)  # large inputs stream into it

    page = opts.get("html")
    if page is not None:
        page = Path(page) if page else page  # an empty path is refused by the check below
    if page is not None:
        from ..io.writers import PAGE_SUFFIXES, check_output_path

        check_output_path(page, reader.paths, opts["force"], key="html", suffixes=PAGE_SUFFIXES)

    from ..api import compute
    from .progress import progress_bar

    # The page shows the derivation, the per-sample values and the gradients whatever is printed.
    want_grad = opts["grad"] or opts["expect_grad"] is not None or page is not None
    # A streamed call keeps per-sample values and gradients in memory only when they are shown or checked.
    keep = ((opts["per_sample"] or opts["grad"]) and output is None) or to_stdout or opts["expect_per_sample"] is not None \
        or opts["expect_grad"] is not None or page is not None or views.wanted(opts)
    try:
        phase = f"{spec.name}: loss and gradient" if want_grad else f"{spec.name}: loss"
        with strict_inputs(opts.get("strict", False)), progress_bar(label=phase) as progress:
            result = compute(call, grad=want_grad, explain=opts["explain"] or page is not None, rows=opts["rows"],
                             origins=reader.origins, keep_arrays=keep, sink=sink, progress=progress,
                             block_rows=opts.get("chunk_rows") if backend == "local" else None,
                             executor=executor(opts, output if grad_shards else None))
    except BaseException:
        if sink is not None:
            sink.abort()
        raise

    report = None
    if opts["expect"] is not None or opts["expect_per_sample"] is not None or opts["expect_grad"] is not None:
        try:
            report = check_result(
                result,
                expect=parse_expect(opts["expect"], reader) if opts["expect"] is not None else None,
                expect_per_sample=reader.read("expect_per_sample", opts["expect_per_sample"]) if opts["expect_per_sample"] else None,
                expect_grad={result.kind: reader.read("expect_grad", opts["expect_grad"])} if opts["expect_grad"] else None,
                rtol=opts["rtol"], atol=opts["atol"],
            )
        except BaseException:
            if sink is not None:
                sink.abort()
            raise

    show_per_sample = opts["per_sample"] and output is None
    show_grad = opts["grad"] and output is None
    if output is not None:
        from ..io.writers import check_output_path

        try:
            check_output_path(output, reader.paths, opts["force"])  # again: --expect-* files are inputs too
            sink.commit(result)  # the streamed parts, or write_output on the in-memory result
        except BaseException:
            sink.abort()
            raise
        sys.stderr.write(f"wrote {_written(sink.written)} to {output}\n")
    if page is not None:
        _write_page(page, spec, call, result, reader, opts)
    shown = views.compute_views(call, result, opts) if views.wanted(opts) else None
    if to_stdout:  # `-o -`: the file's CSV is the output
        from ..io.outstream import output_csv

        sys.stdout.write(output_csv(result, opts["grad"]))
        if report is not None:
            from ..render.text import write_check_plain

            write_check_plain(sys.stderr, report)
    else:
        render_result(fmt, result, report, per_sample=show_per_sample, grad=show_grad, explain=opts["explain"],
                      rows=opts["rows"], views=shown, precision=opts.get("precision"))
    if not _finite(result):
        views.report_not_finite(_with_per_sample(call, result, keep), result)
    if report is not None and not report.passed:
        return ExitCode.CHECK_FAILED
    return ExitCode.OK


def _output_path(text: str | None, fmt: str) -> tuple[Path | None, bool]:
    """``-o``'s file (None: no file), and whether ``-o -`` asks for the CSV on standard output."""
    if text is None:
        return None, False
    if text == "":
        raise UsageError("--output: empty path; name a file (or - for CSV on standard output)")
    if text == "-":
        return None, True
    return Path(text), False


def _written(written: dict[str, tuple[int, ...]]) -> str:
    """What ``-o`` wrote (array names and shapes), for the confirmation line on stderr."""
    import math

    n = math.prod(written.get("per_sample", ()))
    what = f"per-sample values ({n} value{'s' if n != 1 else ''})"
    grads = [k[len("grad_"):] for k in written if k.startswith("grad_")]
    if grads:
        what += " and the gradient of " + ", ".join(grads)
    return what


def executor(opts: dict[str, Any], grad_output: Path | None):
    """Where the rows are computed: None for this process (the local backend), or a Dask executor."""
    from ..core.call import BACKENDS
    from ..errors import ref

    backend = opts.get("backend") or "local"
    if backend not in BACKENDS:
        raise UsageError(f"{ref('backend')}: expected one of {', '.join(BACKENDS)}; got {backend!r}")
    if opts.get("chunk_rows") is not None and opts["chunk_rows"] < 1:
        raise UsageError(f"{ref('chunk_rows')}: must be 1 or more; got {opts['chunk_rows']}")
    if backend == "local":
        if opts.get("scheduler") is not None:
            raise UsageError(f"{ref('scheduler')} is the address of a Dask scheduler: give {ref('backend')} dask too")
        return None
    from ..backends.dask import DaskExecutor

    return DaskExecutor(opts.get("scheduler"), opts.get("chunk_rows"), grad_output, opts["force"])


_ARRAY_OPTIONS = {k for k, key in BY_NAME.items() if key.kind in ("source", "named_sources")}  # sources besides the loss's


def read_call(spec: LossSpec, opts: dict[str, Any]) -> tuple[dict[str, Any], SourceReader]:
    """The loss call (every source read) from a loss command's options, and the reader
    (origins, input paths). Shared with ``lossctl record`` and ``lossctl gradcheck``."""
    reader = SourceReader(stdin_format=opts.get("stdin_format"), name=option_name)
    names = set(array_keys(spec))
    stdin_users = ["--" + k.replace("_", "-") for k, v in opts.items() if v == "-" and (k in names or k in _ARRAY_OPTIONS)]
    if len(stdin_users) > 1:  # say so before standard input is consumed
        raise UsageError(f"{stdin_users[1]}: standard input is already read by {stdin_users[0]}")
    call: dict[str, Any] = {"loss": spec.name}
    for key, value in opts.items():
        if not_computed(key) or value is None:
            continue
        if key == "params":
            call[key] = reader.read_named(key, value)
        elif key == "exclude_params" and opts.get("params") is None:
            continue
        else:
            call[key] = reader.read(key, value) if key in names else value
    return call, reader


def _write_page(page: Path, spec: LossSpec, call: dict[str, Any], result, reader: SourceReader,
                opts: dict[str, Any]) -> None:
    """The ``--html`` page of this call (checked again: ``--expect-*`` files are inputs too)."""
    from ..io.writers import PAGE_SUFFIXES, check_output_path, write_page
    from ..render.html import LossPage, SourceInfo, loss_page
    from ..core.triage import histogram, top_samples

    check_output_path(page, reader.paths, opts["force"], key="html", suffixes=PAGE_SUFFIXES)
    sources = []
    for key in array_keys(spec):
        value = call.get(key)
        if value is None or key not in reader.origins:
            continue
        origin = opts[key] if isinstance(opts.get(key), str) else reader.origins[key].split(" ", 1)[-1]
        sources.append(SourceInfo(key, origin, tuple(getattr(value, "shape", ())),
                                  str(getattr(value, "dtype", type(value).__name__))))
    parameters = {p.name: call.get(p.name, p.default) for p in spec.params if p.kind != "array"}
    top = [(s.index, s.loss) for s in top_samples(call, result, opts.get("top") or 5)]
    hist = histogram(result.per_sample)
    info = LossPage(spec.name, spell(spec.mirrors), spell(spec.summary), spell(spec.formula), convention=call.get("convention", "torch"),
                    sources=sources, parameters=parameters, rows=max(opts["rows"], 10),
                    command=_command_line(spec, opts), top=top,
                    histogram=(hist.edges, hist.counts) if hist.counts else None)
    write_page(page, loss_page(result, info))


def _command_line(spec: LossSpec, opts: dict[str, Any]) -> str:
    """The call as a command line: the options given, defaults left out."""
    import shlex

    defaults = {k: key.default for k, key in BY_NAME.items()} | {p.name: p.default for p in spec.params}
    words = ["lossctl", spec.name]
    for key, value in opts.items():
        if value is None or value is False or (key in defaults and defaults[key] == value):
            continue
        option = "--" + key.replace("_", "-")
        words += [option] if value is True else [option, str(value)]
    return shlex.join(words)


class strict_inputs:
    """``with strict_inputs(True):`` turns an :class:`InputWarning` (NaN/inf in an input, target
    probabilities that do not sum to 1, ...) into an :class:`InputError` (exit 3); without
    ``--strict`` the warnings go on as ``warning:`` lines on stderr."""

    def __init__(self, strict: bool):
        self.strict = strict
        self._catch = warnings.catch_warnings()

    def __enter__(self):
        if self.strict:
            self._catch.__enter__()
            warnings.simplefilter("error", InputWarning)
            warnings.simplefilter("always", ReductionWarning)  # about the call, not the inputs: still shown
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.strict:
            self._catch.__exit__(exc_type, exc, tb)
            if isinstance(exc, InputWarning):
                raise InputError(f"{exc.problem} (refused by --strict)") from None
        return False


def parse_expect(text: str, reader: SourceReader):
    try:
        return float(text)
    except ValueError:
        return reader.read("expect", text)


def _finite(result) -> bool:
    import numpy as np

    values = result.per_sample if result.per_sample is not None else result.loss
    with np.errstate(all="ignore"):
        return bool(np.all(np.isfinite(np.asarray(result.loss, dtype=np.float64)))
                    and np.all(np.isfinite(np.asarray(values, dtype=np.float64))))


def _with_per_sample(call: dict[str, Any], result, kept: bool):
    """``call`` for the why-not-finite walk; a streamed result without its per-sample values gets
    them (computed again, kept this time) so that the first offending samples can be named."""
    if result.per_sample is None and not kept:
        from ..api import compute

        again = compute(call, grad=False, keep_arrays=True)
        result.per_sample = again.per_sample
    return call


def render_result(fmt: str, result, report, *, per_sample: bool, grad: bool, explain: bool, rows: int,
                  views=None, precision: int | None = None) -> None:
    from ..render.numbers import precision as table_precision

    with table_precision(precision):  # the digits of every number in a table
        _render_result(fmt, result, report, per_sample=per_sample, grad=grad, explain=explain, rows=rows, views=views)


def _render_result(fmt: str, result, report, *, per_sample: bool, grad: bool, explain: bool, rows: int,
                   views=None) -> None:
    from ..render.settings import settings_document, settings_lines, settings_table
    from . import views as triage_views
    from .config import active, settings

    # Under a project configuration, --explain also says which tolerances, dtype, ... the call
    # used and where each came from (the file, the command line or the default).
    shown = settings() if explain and active().path is not None else {}
    out = sys.stdout
    if fmt == "json":
        from ..render.text import document, write_json

        extra = dict(triage_views.json_parts(views) or {})
        if shown:
            extra["settings"] = settings_document(shown)
        write_json(out, document(result, report, per_sample=per_sample, grad=grad, explain=explain,
                                 extra=extra))
        return
    if fmt == "plain":
        from ..render.text import write_check_plain, write_plain

        write_plain(out, result, per_sample=per_sample, grad=grad, explain=explain)
        for line in settings_lines(shown):
            out.write(line + "\n")
        triage_views.write_plain(out, views)
        if report is not None:
            write_check_plain(sys.stderr, report)
        return
    if fmt == "csv":
        from ..render.text import write_check_plain, write_csv

        if not triage_views.write_csv(out, views):
            write_csv(out, result, per_sample=per_sample, grad=grad)
        if report is not None:
            write_check_plain(sys.stderr, report)
        return
    from rich.console import Console

    from ..render import table

    console = Console(file=out)
    console.print(table.summary(result))
    with_samples = per_sample or result.reduction == "none"
    if with_samples:
        console.print(table.per_sample(result, grad=grad, rows=rows, width=console.width))
    if grad and not with_samples:  # the per-sample table already holds the gradient's rows
        console.print(table.gradients(result, width=console.width))
    if explain:
        console.print(table.derivation(result))
        if shown:
            console.print(settings_table(shown))
    triage_views.print_tables(console, views, result.loss_name)
    if report is not None:
        console.print(table.check(report))
