"""JUnit XML for a :class:`~lossctl.suite.SuiteReport` (the format CI systems display).

One ``<testsuite>`` per suite file inside ``<testsuites>``; one ``<testcase>`` per
case run, with ``<failure>`` for a failed check (message: the one-line diff, text:
every comparison) and ``<error>`` for a case that could not be computed.
Deselected cases (``-k``) are left out, as pytest does.
"""

from __future__ import annotations

import datetime as _dt
import socket
import xml.etree.ElementTree as ET

from . import fmt_float

MAX_VALUES = 1000  # arrays larger than this are summarised in failure texts


def _time(seconds: float) -> str:
    return f"{seconds:.6f}"


def build(report, *, suite_error: str | None = None) -> ET.Element:
    """The ``<testsuites>`` element. ``suite_error``: the suite could not be loaded (one ``<error>`` case)."""
    from .check import case_summary, describe_comparison

    suite = report.suite if report is not None else None
    root = ET.Element("testsuites", name="lossctl")
    if report is None:
        ts = ET.SubElement(root, "testsuite", name="lossctl-check", tests="1", failures="0", errors="1",
                           skipped="0", time=_time(0.0), timestamp=_timestamp())
        tc = ET.SubElement(ts, "testcase", classname="lossctl-check", name="load suite", time=_time(0.0))
        err = ET.SubElement(tc, "error", message=_first_line(suite_error or "the suite could not be loaded"),
                            type="MalformedSuite")
        err.text = suite_error or ""
        _totals(root, 1, 0, 1, 0.0)
        return root
    ts = ET.SubElement(root, "testsuite", name=suite.name, tests=str(len(report.results)),
                       failures=str(report.failed), errors=str(report.errors), skipped="0",
                       time=_time(report.seconds), timestamp=_timestamp(), hostname=_hostname())
    props = ET.SubElement(ts, "properties")
    ET.SubElement(props, "property", name="file", value=str(suite.path))
    if report.deselected:
        ET.SubElement(props, "property", name="deselected", value=str(report.deselected))
    for r in report.results:
        case = r.case
        tc = ET.SubElement(ts, "testcase", classname=f"{suite.name}.{case.spec.name}", name=case.name,
                           file=str(suite.path), line=str(case.line), time=_time(r.seconds))
        if r.status == "fail":
            el = ET.SubElement(tc, "failure", message=case_summary(r), type="CheckFailed")
            lines = [f"case {case.name} ({suite.path}:{case.line}), loss {case.spec.name}"]
            if r.report is not None and r.report.comparisons:
                lines.append(f"rtol {r.report.rtol:g}, atol {r.report.atol:g}")
                for c in r.report.comparisons:
                    lines.append(("ok   " if c.passed else "FAIL ") + describe_comparison(c))
                    if not c.passed and not c.problem:
                        lines.append(f"     expected: {_full(c.expected)}")
                        lines.append(f"     actual:   {_full(c.actual)}")
            else:
                lines.append(case_summary(r))
            el.text = "\n".join(lines)
        elif r.status == "error":
            el = ET.SubElement(tc, "error", message=_first_line(r.error), type=r.error_type or "Error")
            el.text = f"case {case.name} ({suite.path}:{case.line}): {r.error}"
        else:
            out = ET.SubElement(tc, "system-out")
            out.text = f"loss {_loss_text(r.result)}"
    _totals(root, len(report.results), report.failed, report.errors, report.seconds)
    return root


def _totals(root: ET.Element, tests: int, failures: int, errors: int, seconds: float) -> None:
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("time", _time(seconds))


def _loss_text(result) -> str:
    if result is None:
        return "-"
    import numpy as np

    a = np.asarray(result.loss)
    return fmt_float(a) if a.ndim == 0 else f"array of shape {list(a.shape)}"


def _full(value) -> str:
    import json

    import numpy as np

    from . import jsonable

    if isinstance(value, str):
        return value
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return fmt_float(a)
    if a.size > MAX_VALUES:
        head = ", ".join(fmt_float(v) for v in a.reshape(-1)[:20])
        return f"array of shape {list(a.shape)}: [{head}, ...] (the first 20 of {a.size} values)"
    return json.dumps(jsonable(a))


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _timestamp() -> str:
    return _dt.datetime.now().replace(microsecond=0).isoformat()


def _hostname() -> str:
    try:
        return socket.gethostname()
    except OSError:
        return "localhost"


def document(root: ET.Element) -> str:
    """The XML text (UTF-8, with declaration) of a report built by :func:`build`."""
    import io

    ET.indent(root)
    buf = io.BytesIO()
    ET.ElementTree(root).write(buf, encoding="utf-8", xml_declaration=True)
    return buf.getvalue().decode("utf-8") + "\n"
