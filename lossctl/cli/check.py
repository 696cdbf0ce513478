"""``lossctl check SUITE.yaml``: run a check suite, report, optionally update it."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import ExitCode, InputError, UsageError
from .help import Command, examples
from ..core.call import BY_NAME
from .options import pick_format, table_digits

CHECK_FORMATS = ("auto", "table", "json", "plain", "jsonl", "github", "junit")

CHECK_HELP = """Run the cases of a check suite and compare them with their expected values.

Prints one line per case (PASS name / FAIL name: what differs / ERROR name: why) and a
summary 'N passed, M failed' (', K errors', ', D deselected' when there are any).

Suite format: a mapping with 'cases' (a list) and optionally 'name', 'defaults' (keys
every case gets unless it sets them) and suite-wide 'rtol'/'atol'. A case takes the loss
command's keys in snake case (loss, logits, target, weight, reduction, dtype, dim, rtol,
atol, ...), an optional 'name' (default LOSS-N) and 'expect': a number (the loss) or a
mapping {loss, per_sample, grad: {INPUT: ...}}. A string value is a source: a path
relative to the suite file, FILE:KEY, or a literal; lists and numbers are inline values.
Tolerances: the case's, else defaults', else the suite's, else rtol 1e-7 / atol 1e-9.

Exit codes: 0 every case passed; 1 a case failed a check (or has no 'expect'); 3 the
suite is malformed (file, line, case and key named; nothing runs) or a case could not be
computed (missing file, wrong shape, invalid value: that case is an ERROR, the others
still run); 4 an internal error in some case. An ERROR outranks a FAIL: 3 beats 1.

--update rewrites the expected values that fail (and fills in missing ones; with
'per_sample: true' / 'grad: true' in a case also those) from the current results,
changing nothing else in the file, and prints what changed. Values that pass within the
tolerance are kept as written. Expected values read from data files are never
rewritten: they are reported and the run exits 1."""



def register(app: typer.Typer) -> None:
    app.command("check", help=CHECK_HELP, short_help="Run a check suite (pinned loss values) and report.", cls=Command,
                epilog=examples("lossctl check examples/seeds.yaml",
                                "lossctl check examples/seeds.yaml -k ce --format github",
                                "lossctl check examples/ci/seeds.yaml --junit report.xml --exit-zero -q"))(check)


def check(
    suite: str = typer.Argument(..., metavar="SUITE.yaml", help="The suite file."),
    junit: str | None = typer.Option(None, "--junit", metavar="REPORT.xml", help="Also write the results as JUnit XML."),
    format: str | None = typer.Option(None, "--format", "-f", show_default="auto", rich_help_panel="Output",
                                      autocompletion=lambda incomplete: [f for f in CHECK_FORMATS if f.startswith(incomplete)],
                                      help="auto (table on a terminal, plain otherwise), table, json, plain, jsonl (one "
                                           "JSON line per case, then the totals), github (plain lines, and an ::error "
                                           "annotation at the suite's line for each failing case), junit (JUnit XML on "
                                           "stdout)."),
    json_: bool = typer.Option(False, "--json", help="Short for --format json.", rich_help_panel="Output"),
    precision: int | None = typer.Option(None, "--precision", metavar="N", help=BY_NAME["precision"].help,
                                         rich_help_panel="Output"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Plain output: only the failing cases and the summary.",
                               rich_help_panel="Output"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Plain output: passing cases also show their loss "
                                 "and tolerances.", rich_help_panel="Output"),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when cases fail their checks (errors "
                                   "still exit 3).", rich_help_panel="Checks"),
    patterns: list[str] | None = typer.Option(None, "-k", metavar="PATTERN",
                                              help="Run only the cases whose name contains PATTERN (case-insensitive; "
                                                   "a glob with * ? [..]). Repeat for several."),
    update: bool = typer.Option(False, "--update", help="Rewrite failing and missing expected values from the current results."),
    html: str | None = typer.Option(None, "--html", metavar="REPORT.html",
                                    help="Also write the report as one self-contained HTML page (failures first)."),
    force: bool = typer.Option(False, "--force", help="Allow --html to replace an existing file."),
) -> None:
    from .. import suite as suites
    from .config import active, suite_defaults

    config = active()
    if format is None:  # the project's format where check has it, else auto
        format = config.default("format") if config.default("format") in CHECK_FORMATS else "auto"
    fmt = pick_format(format, json_, CHECK_FORMATS)
    precision = table_digits(precision)
    if quiet and verbose:
        raise UsageError("--quiet and --verbose: give one of them")
    if update and fmt in ("jsonl", "github", "junit"):
        raise UsageError(f"--update and --format {fmt}: an update reports what it changed (table, plain or json)")
    if update and junit:
        raise UsageError("--junit and --update: an update rewrites the expectations; run check again for the report")
    path = Path(suite)
    if junit is not None:
        _check_junit_path(junit, path, None)
    try:
        loaded = suites.load_suite(path, base=suite_defaults())
    except InputError as e:
        if junit is not None:
            _write_junit(junit, None, str(e), path)
        raise
    patterns = [p for p in (patterns or []) if p is not None]
    if patterns and loaded.cases and not suites.select(loaded.cases, patterns):
        from ..errors import NoCasesSelected

        shown = " ".join(f"-k {p!r}" for p in patterns)
        raise NoCasesSelected(f"{shown}: selects none of the {len(loaded.cases)} cases of {path} "
                              f"(exit {int(NoCasesSelected.exit_code)}); the names: "
                              + ", ".join(c.name for c in loaded.cases[:8]) + (", ..." if len(loaded.cases) > 8 else ""))
    if junit is not None:
        _check_junit_path(junit, path, loaded)
    if html is not None:
        _check_page_path(html, path, loaded, force)

    out = sys.stdout
    on_result = None
    if config.path is not None and fmt in ("plain", "github", "table") and not quiet:
        from ..render.ci import config_line

        out.write(config_line(config.source, config.values) + "\n")
    if fmt in ("plain", "github", "jsonl") and not update:
        from ..render.ci import case_line, github_annotation, jsonl_case

        def on_result(r) -> None:
            if fmt == "jsonl":
                out.write(jsonl_case(r) + "\n")
                return
            if not quiet or r.status != "pass":
                out.write(case_line(r, verbose=verbose) + "\n")
            if fmt == "github" and r.status != "pass":
                out.write(github_annotation(r, str(path)) + "\n")
            out.flush()

    report = suites.run_suite(loaded, patterns, on_result=on_result)

    if update:
        from ..render.check import write_update
        from ..suite.update import update_suite

        outcome = update_suite(loaded, report)
        write_update(out, outcome, fmt)
        code = outcome.exit_code
    else:
        code = int(report.exit_code)
        if exit_zero and code == ExitCode.CHECK_FAILED:
            code = int(ExitCode.OK)
        if fmt in ("plain", "github"):
            out.write(report.summary_line() + "\n")
        elif fmt == "jsonl":
            from ..render.ci import jsonl_summary

            out.write(jsonl_summary(report, code) + "\n")
        elif fmt == "junit":
            from ..render import junit as junit_xml

            out.write(junit_xml.document(junit_xml.build(report)))
        elif fmt == "json":
            from ..render.check import report_document
            from ..render.text import write_json

            doc = report_document(report)
            if config.path is not None:
                doc["config"] = {"file": config.source, "values": config.values}
            write_json(out, doc)
        else:
            from ..render.check import write_table
            from ..render.numbers import precision as table_precision

            with table_precision(precision):  # the digits of every number in a table
                write_table(out, report)
        if junit is not None:
            _write_junit(junit, report, None, path)
        if html is not None:
            _write_page(html, report, path)
    out.flush()
    if code:
        raise typer.Exit(code)


def _check_page_path(html: str, suite_path: Path, suite, force: bool) -> None:
    from ..io.writers import PAGE_SUFFIXES, check_output_path
    from ..suite import source_paths

    inputs = [suite_path] + sorted(source_paths(suite))
    check_output_path(Path(html), inputs, force, key="html", suffixes=PAGE_SUFFIXES)


def _write_page(html: str, report, suite_path: Path) -> None:
    import shlex

    from ..io.writers import write_page
    from ..render.html import check_page, check_rows

    command = shlex.join(["lossctl", "check", str(suite_path), "--html", html])
    write_page(Path(html), check_page(report.suite.name, str(suite_path), check_rows(report), report.summary_line(),
                                      seconds=report.seconds, command=command))


def _check_junit_path(junit: str, suite_path: Path, suite) -> None:
    """The report may not replace the suite, a file a case reads, a directory or a device."""
    from ..io.writers import check_target

    inputs = [suite_path]
    if suite is not None:
        from ..suite import source_paths

        inputs += sorted(source_paths(suite))
    check_target(junit, what=f"--junit {junit}", inputs=inputs, make_dirs=True)


def _write_junit(junit: str, report, error: str | None, suite_path: Path) -> None:
    from ..io.writers import write_atomic
    from ..render import junit as junit_xml

    root = junit_xml.build(report, suite_error=error)
    if report is None:
        ts = root.find("testsuite")
        ts.set("name", suite_path.stem)
        ts.find("testcase").set("classname", suite_path.stem)
    target = Path(junit)
    if str(target.parent) and not target.parent.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"--junit {junit}: cannot create {target.parent}: {e.strerror or e}") from None
    write_atomic(target, junit_xml.document(root), what=f"--junit {junit}")
