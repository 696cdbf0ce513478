"""``lossctl diff A B``: compare two dumps array by array (statistics in :mod:`lossctl.core.diff`)."""

from __future__ import annotations

import sys

import typer

from ..errors import ExitCode, UsageError
from ..core.call import BY_NAME
from .help import Command, examples

DIFF_FORMATS = ("auto", "table", "json", "plain")

DIFF_HELP = """Compare two dumps element by element, B being the reference.

lossctl diff A B [--rtol R] [--atol A] [--top K] [--equal-nan]

A and B are sources in any input form (a file, FILE:KEY, '-', a literal). Two files that
hold several arrays (.npz, a JSON/YAML mapping, ...) are compared key by key, and the keys
only one of them holds are listed. Per array: the shape, both dtypes (different dtypes are
compared in the wider one), the largest |a − b| and |a − b|/|b|, the largest distance in
ulps of the coarser dtype, how many positions numpy.isclose(a, b, rtol, atol) rejects,
the NaN positions (equal only with --equal-nan, as numpy), the K worst positions with
both values, and a histogram of log10 |a − b|. Large .npy files are read block by block.

Exit 0: every array within tolerance; 1: some are not; 3: shapes differ or a key is
missing on one side (the statistics of the rest are still shown)."""


def register(app: typer.Typer) -> None:
    app.command("diff", help=DIFF_HELP, short_help="Compare two dumps: errors, ulps, worst positions, histogram.", cls=Command,
                epilog=examples("lossctl diff examples/triage/port.npz:hidden examples/triage/reference.npz",
                                "lossctl diff examples/triage/port.npz examples/triage/reference.npz --rtol 1e-2 --atol 1e-6 --json",
                                "lossctl diff examples/triage/port.npz:logits examples/triage/reference.npz --rtol 1e-2 --top 3 "
                                "--format table --precision 12"))(diff)


def diff(
    a: str = typer.Argument(..., metavar="A", help="The array(s) under test: a source in any input form."),
    b: str = typer.Argument(..., metavar="B", help="The reference array(s), in any input form."),
    rtol: float | None = typer.Option(None, "--rtol", show_default="1e-07", help="Relative tolerance, as numpy.isclose."),
    atol: float | None = typer.Option(None, "--atol", show_default="1e-09", help="Absolute tolerance, as numpy.isclose."),
    top: int = typer.Option(5, "--top", help="How many worst positions to list per array."),
    equal_nan: bool = typer.Option(False, "--equal-nan", help="Count NaN against NaN as equal (as numpy.isclose)."),
    stdin_format: str | None = typer.Option(None, "--stdin-format", help="Format of '-' (stdin): npy, npz, csv, tsv, txt, json, yaml."),
    format: str | None = typer.Option(None, "--format", "-f", show_default="auto",
                                      help="auto (table on a terminal, plain otherwise), table, json, plain."),
    json_: bool = typer.Option(False, "--json", help="Short for --format json."),
    precision: int | None = typer.Option(None, "--precision", metavar="N", help=BY_NAME["precision"].help),
    html: str | None = typer.Option(None, "--html", metavar="DIFF.html",
                                    help="Also write the comparison as one self-contained HTML page."),
    force: bool = typer.Option(False, "--force", help="Allow --html to replace an existing file."),
) -> int:
    from ..core.diff import compare_named
    from ..render.diff import problems

    from .config import active
    from .options import pick_format, table_digits

    config = active()  # the project's tolerances and format where the command line gives none
    rtol = rtol if rtol is not None else config.default("rtol", BY_NAME["rtol"].default)
    atol = atol if atol is not None else config.default("atol", BY_NAME["atol"].default)
    if format is None:
        format = config.default("format") if config.default("format") in DIFF_FORMATS else "auto"
    fmt = pick_format(format, json_, DIFF_FORMATS)
    digits = table_digits(precision)
    if top < 1:
        raise UsageError(f"--top: must be 1 or more, got {top}")
    for name, value in (("--rtol", rtol), ("--atol", atol)):
        if not value >= 0:
            raise UsageError(f"{name}: must be 0 or more, got {value}")
    if a == "-" and b == "-":
        raise UsageError("A and B: standard input can be read only once")
    page = _page_path(html, (a, b), force) if html is not None else None
    named_a, named_b = _read_pair(a, b, stdin_format)
    report = compare_named(named_a, named_b, rtol=rtol, atol=atol, equal_nan=equal_nan, top=top)
    if page is not None:
        _write_page(page, report, a, b)
    from ..render.numbers import precision as table_precision

    with table_precision(digits):  # the digits of every number in a table
        _render(fmt, report, a, b)
    if not report.complete:
        for line in problems(report, a, b):
            _stderr(f"error: {line}")
        code = ExitCode.INPUT
    else:
        code = ExitCode.OK if report.passed else ExitCode.CHECK_FAILED
    return int(code)


def _page_path(html: str, sources: tuple[str, str], force: bool):
    from pathlib import Path

    from ..io.sources import parse_source
    from ..io.writers import PAGE_SUFFIXES, check_output_path

    inputs = [s.path for s in map(parse_source, sources) if s.path is not None]
    check_output_path(Path(html), inputs, force, key="html", suffixes=PAGE_SUFFIXES)
    return Path(html)


def _write_page(page, report, a: str, b: str) -> None:
    import shlex

    from ..io.writers import write_page
    from ..render.diff import verdict
    from ..render.html import diff_arrays, diff_page

    command = shlex.join(["lossctl", "diff", a, b, "--html", str(page)])
    write_page(page, diff_page(a, b, diff_arrays(report), verdict(report), only_a=report.only_a,
                               only_b=report.only_b, command=command))


def _read_pair(a: str, b: str, stdin_format: str | None):
    """Both sides as {name: array}.

    A side that names one array (FILE:KEY, a .npy, a literal, a file of one array) is compared
    with the other side's array of the same key, or with its only array."""
    from ..io.readers import read_array, read_named_arrays
    from ..io.sources import parse_source

    sa, sb = parse_source(a), parse_source(b)

    def read(source, origin):
        if source.kind == "path" and source.key is not None:  # one array: bfloat16/float8 kept as bits
            return {source.key: read_array(source, origin, stdin_format=stdin_format, lazy=True)}
        return read_named_arrays(source, origin, stdin_format=stdin_format)

    named_a, named_b = read(sa, a), read(sb, b)
    single_a, single_b = len(named_a) == 1, len(named_b) == 1
    if single_a and single_b:
        (ka, va), (kb, vb) = next(iter(named_a.items())), next(iter(named_b.items()))
        name = ka if ka == kb and ka != "params" else ""
        return {name: va}, {name: vb}
    if sa.key is not None or single_a:  # one array against a file of several: the same key there
        key = next(iter(named_a))
        return named_a, {key: named_b[key]} if key in named_b else {}
    if sb.key is not None or single_b:
        key = next(iter(named_b))
        return {key: named_a[key]} if key in named_a else {}, named_b
    return named_a, named_b


def _render(fmt: str, report, a: str, b: str) -> None:
    out = sys.stdout
    if fmt == "json":
        from ..render.diff import diff_document
        from ..render.text import write_json

        write_json(out, diff_document(report, a, b))
        return
    if fmt == "plain":
        from ..render.diff import write_diff_plain

        write_diff_plain(out, report)
        return
    from rich.console import Console

    from ..render import table

    console = Console(file=out)
    console.print(table.diff_summary(report, a, b))
    for d in report.arrays:
        if d.shapes_match and (not d.passed or len(report.arrays) == 1):
            console.print(table.diff_detail(d))


def _stderr(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
    except (OSError, ValueError):
        pass
