"""``lossctl check``, ``lossctl record LOSS ...`` and ``lossctl gradcheck LOSS ...``.

``record`` and ``gradcheck`` are groups with one command per loss, built on
demand by the same factory as the loss commands (:func:`make_loss_command`),
so they take exactly the loss command's options (plus their own).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from ..errors import ExitCode, InputError, UsageError
from .options import Opt

CHECK_FORMATS = ("auto", "table", "json", "plain")

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
    app.command("check", help=CHECK_HELP, short_help="Run a check suite (pinned loss values) and report.")(check)
    app.add_typer(_lazy_app(
        "record", _record_body,
        extra=(
            Opt("to", ("--to",), str | None, None, "The suite file to append the case to (created when missing). Required.", "Record"),
            Opt("name", ("--name",), str | None, None, "The case's name (default: LOSS-N).", "Record"),
        ),
        omit=frozenset({"expect", "expect_per_sample", "expect_grad", "output", "force"}),
        help="Append a loss call to a check suite as a new case pinned to its current values.\n\n"
             "lossctl record LOSS [the loss command's options] --to SUITE.yaml [--name NAME]\n\n"
             "Inputs given as files stay references (paths rewritten relative to the suite); "
             "literals and standard input are written inline. The case expects the current "
             "loss, and also the per-sample values with --per-sample and the gradient with "
             "--grad; non-default --rtol/--atol are kept. Prints the result as the loss "
             "command does; 'lossctl check SUITE.yaml' then passes.",
        short_help="Append a loss call to a check suite as a pinned case.",
    ), name="record")
    app.add_typer(_lazy_app(
        "gradcheck", _gradcheck_body,
        extra=(
            Opt("tol", ("--tol",), float, 1e-6, "Largest error allowed, |analytic - numeric| / max(1, |numeric|).", "Gradcheck"),
            Opt("max_elements", ("--max-elements",), int | None, None, "Check at most this many elements per input (evenly spaced).", "Gradcheck"),
        ),
        omit=frozenset({"per_sample", "grad", "explain", "rows", "output", "force", "expect", "expect_per_sample",
                        "expect_grad", "rtol", "atol"}),
        help="Compare the analytic gradient with central finite differences.\n\n"
             "lossctl gradcheck LOSS [the loss command's options] [--tol 1e-6]\n\n"
             "For every differentiable input and element: step h = cbrt(eps)*max(1, |x|), "
             "the loss evaluated in float64 (the sum with --reduction none), one-sided "
             "differences where x+h or x-h leaves the loss's domain. Prints the worst "
             "absolute and relative error with its index; exit 1 when the largest "
             "|analytic - numeric| / max(1, |numeric|) is above --tol.",
        short_help="Check a loss's analytic gradient against finite differences.",
    ), name="gradcheck")


# --------------------------------------------------------------------------- lazy loss groups


def _lazy_app(name: str, body, *, extra, omit, help: str, short_help: str) -> typer.Typer:
    group_cls = type(f"{name.title()}Group", (_LossGroup,), {"body": staticmethod(body), "extra": extra, "omit": omit})
    return typer.Typer(name=name, cls=group_cls, help=help, short_help=short_help, no_args_is_help=True,
                       add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


class _LossGroup(TyperGroup):
    """A group whose commands are the registered losses, each built only when it is invoked."""

    body: Any = None
    extra: tuple = ()
    omit: frozenset = frozenset()

    def list_commands(self, ctx) -> list[str]:
        from ..api import registry

        return registry().names()

    def get_command(self, ctx, cmd_name: str):
        from ..api import registry

        spec = registry()._by_name.get(cmd_name)
        if spec is None:
            return None
        from .loss_commands import make_loss_command

        fn = make_loss_command(spec, extra=self.extra, omit=self.omit, body=self.body)
        mini = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
        mini.command(spec.name, help=fn.__doc__, short_help=spec.summary.split(".")[0])(fn)
        command = typer.main.get_command(mini)
        command.name = spec.name
        return command


def _read_call(spec, opts: dict[str, Any]):
    """The loss call (arrays read), the reader (origins, input paths) and the array option names."""
    from .run import array_names, read_call

    call, reader = read_call(spec, opts)
    return call, reader, array_names(spec)


def _format(opts_format: str, json_: bool, allowed=CHECK_FORMATS) -> str:
    fmt = "json" if json_ else opts_format
    if fmt not in allowed:
        raise UsageError(f"--format: expected one of {', '.join(allowed)}, got {fmt!r}")
    if fmt == "auto":
        fmt = "table" if sys.stdout.isatty() else "plain"
    return fmt


# --------------------------------------------------------------------------- check


def check(
    suite: str = typer.Argument(..., metavar="SUITE.yaml", help="The suite file."),
    junit: str | None = typer.Option(None, "--junit", metavar="REPORT.xml", help="Also write the results as JUnit XML."),
    format: str = typer.Option("auto", "--format", "-f", help="auto (table on a terminal, plain otherwise), table, json, plain."),
    json_: bool = typer.Option(False, "--json", help="Short for --format json."),
    patterns: list[str] | None = typer.Option(None, "-k", metavar="PATTERN",
                                              help="Run only the cases whose name contains PATTERN (case-insensitive; "
                                                   "a glob with * ? [..]). Repeat for several."),
    update: bool = typer.Option(False, "--update", help="Rewrite failing and missing expected values from the current results."),
) -> None:
    from .. import suite as suites

    fmt = _format(format, json_)
    if update and junit:
        raise UsageError("--junit and --update: an update rewrites the expectations; run check again for the report")
    path = Path(suite)
    if junit:
        _check_junit_path(junit, path, None)
    try:
        loaded = suites.load_suite(path)
    except InputError as e:
        if junit:
            _write_junit(junit, None, str(e), path)
        raise
    patterns = [p for p in (patterns or []) if p is not None]
    if patterns and loaded.cases and not suites.select(loaded.cases, patterns):
        shown = " ".join(f"-k {p!r}" for p in patterns)
        raise UsageError(f"{shown}: selects none of the {len(loaded.cases)} cases of {path}")
    if junit:
        _check_junit_path(junit, path, loaded)

    out = sys.stdout
    on_result = None
    if fmt == "plain" and not update:
        def on_result(r) -> None:
            out.write(_plain_line(r) + "\n")

    report = suites.run_suite(loaded, patterns, on_result=on_result)

    if update:
        code = _update(loaded, report, fmt)
    else:
        code = int(report.exit_code)
        if fmt == "plain":
            out.write(report.summary_line() + "\n")
        elif fmt == "json":
            from ..render.text import write_json

            write_json(out, _report_document(report))
        else:
            _print_table(report)
        if junit:
            _write_junit(junit, report, None, path)
    out.flush()
    if code:
        raise typer.Exit(code)


def _plain_line(r) -> str:
    if r.status == "pass":
        return f"PASS {r.name}"
    if r.status == "fail":
        return f"FAIL {r.name}: {r.summary}"
    return f"ERROR {r.name}: {r.error}"


def _report_document(report, updates=None) -> dict:
    from ..render import jsonable
    from ..render.text import check_document

    cases = []
    for r in report.results:
        item: dict[str, Any] = {"name": r.name, "status": r.status, "loss_name": r.case.spec.name, "line": r.case.line}
        if r.result is not None:
            item["loss"] = jsonable(r.result.loss)
        if r.report is not None:
            item["check"] = check_document(r.report)
        if r.status != "pass":
            item["message"] = r.summary
        if r.status == "error":
            item["error"] = r.error
        cases.append(item)
    doc = {
        "suite": str(report.suite.path), "name": report.suite.name,
        "passed": report.passed, "failed": report.failed, "errors": report.errors, "deselected": report.deselected,
        "summary": report.summary_line(), "exit_code": int(report.exit_code), "cases": cases,
    }
    if updates is not None:
        doc["updates"] = updates
    return doc


def _print_table(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..suite import fmt_value

    table = Table(title=f"{report.suite.name} ({report.suite.path})", title_justify="left")
    table.add_column("")
    table.add_column("case")
    table.add_column("loss")
    table.add_column("value", justify="right")
    table.add_column("detail", overflow="fold")
    styles = {"pass": "[green]PASS[/green]", "fail": "[red]FAIL[/red]", "error": "[red]ERROR[/red]"}
    for r in report.results:
        value = "" if r.result is None else fmt_value(r.result.loss)
        table.add_row(styles[r.status], r.name, r.case.spec.name, value, r.summary)
    console = Console(file=sys.stdout)
    console.print(table)
    console.print(report.summary_line())


def _check_junit_path(junit: str, suite_path: Path, suite) -> None:
    """The report may not replace the suite, a file a case reads, or a directory."""
    target = Path(junit).resolve()
    if target == suite_path.resolve():
        raise UsageError(f"--junit {junit}: that is the suite file; choose another path")
    if target.is_dir():
        raise UsageError(f"--junit {junit}: is a directory")
    if suite is not None:
        from ..suite import source_paths

        for p in source_paths(suite):
            if Path(p).resolve() == target:
                raise UsageError(f"--junit {junit}: a case reads that file; lossctl never writes over an input")


def _write_junit(junit: str, report, error: str | None, suite_path: Path) -> None:
    from .. import junit as junit_xml

    try:
        root = junit_xml.build(report, suite_error=error)
        if report is None:
            ts = root.find("testsuite")
            ts.set("name", suite_path.stem)
            ts.find("testcase").set("classname", suite_path.stem)
        junit_xml.write(junit, root)
    except OSError as e:
        raise InputError(f"--junit {junit}: cannot write: {e.strerror or e}") from None


def _update(suite, report, fmt: str) -> int:
    from ..snapshot import plan_update, write_text

    plan = plan_update(suite, report)
    if plan.text != suite.text:
        try:
            current = suite.path.read_bytes().decode("utf-8-sig")
        except OSError as e:
            raise InputError(f"{suite.path}: cannot read: {e.strerror or e}") from None
        if current != suite.text:
            raise InputError(f"{suite.path}: changed while the cases ran; nothing was written, run --update again")
        try:
            write_text(suite.path, ("\ufeff" if suite.bom else "") + plan.text)
        except OSError as e:
            raise InputError(f"{suite.path}: cannot write: {e.strerror or e}") from None
    changed = plan.cases_changed()
    errors = [r for r in report.results if r.status == "error"]
    kept_cases = {c.case for c in plan.kept}
    unchanged = len(report.results) - len(changed | kept_cases) - len(errors)
    summary = f"{len(changed)} updated, {unchanged} unchanged"
    if kept_cases:
        summary += f", {len(kept_cases)} still failing"
    if errors:
        summary += f", {len(errors)} error" + ("s" if len(errors) != 1 else "")
    if report.deselected:
        summary += f", {report.deselected} deselected"
    code = int(report.exit_code) if errors else (ExitCode.CHECK_FAILED if kept_cases else ExitCode.OK)
    if fmt == "json":
        from ..render import jsonable
        from ..render.text import write_json

        updates = [{"case": c.case, "what": c.what, "action": c.action,
                    "old": c.old if isinstance(c.old, str) else jsonable(c.old), "new": jsonable(c.new),
                    **({"reason": c.reason} if c.reason else {})} for c in plan.changes]
        doc = _report_document(report, updates)
        doc["summary"] = summary
        doc["exit_code"] = int(code)
        write_json(sys.stdout, doc)
        return int(code)
    for c in plan.changes:
        sys.stdout.write(c.describe() + "\n")
    for r in errors:
        sys.stdout.write(f"ERROR {r.name}: {r.error}\n")
    sys.stdout.write(summary + "\n")
    return int(code)


# --------------------------------------------------------------------------- record


def _record_body(spec, opts: dict[str, Any]) -> int:
    import numpy as np

    from ..api import compute
    from ..io.sources import parse_source
    from ..snapshot import append_case, to_plain, write_text
    from ..suite import compose, parse_suite
    from .loss_commands import spec_options
    from .run import _OUTPUT_KEYS, _render

    opts = dict(opts)
    to_text = opts.pop("to")
    name = opts.pop("name")
    if not to_text:
        raise UsageError(f"record {spec.name}: missing --to SUITE.yaml (the suite to add the case to)")
    to = Path(to_text)
    from .run import output_format

    fmt = output_format(opts)
    if name is not None and not name.strip():
        raise UsageError("--name: empty")

    call, reader, array_names = _read_call(spec, opts)
    to_abs = Path(os.path.abspath(to))
    for p in reader.paths:
        if Path(os.path.abspath(p)) == to_abs:
            raise UsageError(f"--to {to}: an input is read from that file; lossctl never writes over an input")
    if to.is_dir():
        raise UsageError(f"--to {to}: is a directory")

    result = compute(call, grad=opts["grad"], explain=opts["explain"], rows=opts["rows"], origins=reader.origins)

    text = None
    names: set[str] = set()
    count = 0
    bom = False
    if to.exists():
        try:
            raw = to.read_bytes()
            bom = raw.startswith(b"\xef\xbb\xbf")
            text = raw.decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"--to {to}: cannot read: {getattr(e, 'strerror', None) or e}") from None
        root, data = compose(text, str(to))
        # not empty, not only comments, not a mapping still waiting for its `cases:`
        if root is not None and not (isinstance(data, dict) and "cases" not in data):
            existing = parse_suite(text, to)
            names = {c.name for c in existing.cases}
            count = len(existing.cases)
    if name is None:
        n = count + 1
        name = f"{spec.name}-{n}"
        while name in names:
            n += 1
            name = f"{spec.name}-{n}"
    elif name in names:
        raise UsageError(f"--name {name}: {to} already has a case of that name; choose another")

    suite_dir = Path(os.path.abspath(to.parent if str(to.parent) else "."))
    entries: list[tuple[str, Any]] = [("name", name), ("loss", spec.name)]
    skip = set(_OUTPUT_KEYS) - {"rtol", "atol"}
    if opts.get("params") is None:
        skip.add("exclude_params")
    tolerances = []
    for opt in spec_options(spec):  # the command line's order; only what differs from the defaults
        key, value = opt.name, opts.get(opt.name)
        if key in skip or value is None or (value == opt.default and key not in array_names):
            continue
        if key in array_names or key == "params":
            source = parse_source(value)
            if source.kind == "path":
                rel = _relative(Path(os.path.abspath(source.path)), suite_dir)
                entries.append((key, rel + (f":{source.key}" if source.key else "")))
            elif key == "params" and isinstance(call[key], dict) and list(call[key]) != ["params"]:
                entries.append((key, {k: to_plain(np.asarray(v)) for k, v in call[key].items()}))
            else:  # a literal or standard input: the values inline
                value = call[key]["params"] if isinstance(call[key], dict) else call[key]
                entries.append((key, to_plain(np.asarray(value))))
        elif key in ("rtol", "atol"):
            tolerances.append((key, value))
        else:
            entries.append((key, value))
    entries += tolerances
    loss = to_plain(np.asarray(result.loss, dtype=np.float64))
    if opts["per_sample"] or opts["grad"]:
        expect: dict[str, Any] = {"loss": loss}
        if opts["per_sample"]:
            expect["per_sample"] = to_plain(np.asarray(result.per_sample, dtype=np.float64))
        if opts["grad"]:
            expect["grad"] = {k: to_plain(np.asarray(g, dtype=np.float64)) for k, g in result.grad.items()}
        entries.append(("expect", expect))
    else:
        entries.append(("expect", loss))

    new_text = append_case(text, to, entries)
    check = parse_suite(new_text, to)  # the new file must load, with the new case last
    if len(check.cases) != count + 1 or check.cases[-1].name != name:
        raise RuntimeError("record produced a suite without the new case; nothing was written")
    if not to.parent.exists() and str(to.parent):
        to.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_text(to, ("\ufeff" if bom else "") + new_text)
    except OSError as e:
        raise InputError(f"--to {to}: cannot write: {e.strerror or e}") from None

    _render(fmt, result, None, per_sample=opts["per_sample"], grad=opts["grad"], explain=opts["explain"], rows=opts["rows"])
    sys.stdout.flush()
    sys.stderr.write(f"recorded case '{name}' in {to} (run: lossctl check {to})\n")
    return 0


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive (Windows)
        return path.as_posix()


# --------------------------------------------------------------------------- gradcheck


def _gradcheck_body(spec, opts: dict[str, Any]) -> int:
    from ..gradcheck import describe, document, gradcheck

    opts = dict(opts)
    tol = opts.pop("tol")
    max_elements = opts.pop("max_elements")
    if not tol >= 0:
        raise UsageError(f"--tol: expected a number ≥ 0, got {tol}")
    if max_elements is not None and max_elements < 1:
        raise UsageError("--max-elements: must be 1 or more")
    fmt = _format(opts["format"], opts["json"], ("auto", "table", "plain", "json"))
    call, reader, _ = _read_call(spec, opts)
    report = gradcheck(call, tol=tol, origins=reader.origins, max_elements=max_elements)
    if fmt == "json":
        from ..render.text import write_json

        write_json(sys.stdout, document(report))
    else:
        for line in describe(report):
            sys.stdout.write(line + "\n")
    return 0 if report.passed else int(ExitCode.CHECK_FAILED)
