"""Running a suite: select cases, read their sources once (:func:`suite_reader`), compute and check
each case (:func:`run_case`) into a :class:`CaseResult`, and the whole run into a :class:`SuiteReport`."""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..core.expectations import CheckReport, check_result
from ..errors import ExitCode, InputError, LossctlError
from ..io.source_reader import SourceReader
from .model import Case, Suite
from .values import float_text


@dataclass
class CaseResult:
    case: Case
    status: str  # "pass" | "fail" | "error"
    report: CheckReport | None = None
    result: Any = None  # lossctl.api.Result
    error: str = ""  # the error message (status "error")
    error_code: int = 0  # ExitCode of the error
    error_type: str = ""
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.case.name


@dataclass
class SuiteReport:
    suite: Suite
    results: list[CaseResult]
    deselected: int = 0
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def passed(self) -> int:
        return self.count("pass")

    @property
    def failed(self) -> int:
        return self.count("fail")

    @property
    def errors(self) -> int:
        return self.count("error")

    @property
    def exit_code(self) -> ExitCode:
        codes = [r.error_code for r in self.results if r.status == "error"]
        if ExitCode.INTERNAL in codes:
            return ExitCode.INTERNAL
        if codes:
            return ExitCode.INPUT
        if self.failed:
            return ExitCode.CHECK_FAILED
        return ExitCode.OK

    def summary_line(self) -> str:
        """``12 passed, 1 failed`` (``, 2 errors`` / ``, 3 deselected`` when there are any)."""
        text = f"{self.passed} passed, {self.failed} failed"
        if self.errors:
            text += f", {self.errors} error" + ("s" if self.errors != 1 else "")
        if self.deselected:
            text += f", {self.deselected} deselected"
        return text


# --------------------------------------------------------------------------- selection


def select(cases: list[Case], patterns: Iterable[str]) -> list[Case]:
    """Cases whose name contains one of ``patterns`` (case-insensitive), or matches it as a glob
    (``*``, ``?``, ``[...]``). No patterns: every case."""
    pats = [p for p in patterns if p is not None]
    if not pats:
        return list(cases)
    out = []
    for case in cases:
        name = case.name.lower()
        for p in pats:
            pl = p.lower()
            if any(ch in pl for ch in "*?["):
                if fnmatch.fnmatchcase(name, pl):
                    out.append(case)
                    break
            elif pl in name:
                out.append(case)
                break
    return out


# --------------------------------------------------------------------------- running


def suite_reader(base: Path) -> SourceReader:
    """The reader of a suite's sources: paths relative to the suite's folder, each file read once
    (cases often share data files; each gets a copy), no standard input."""
    return SourceReader(base, stdin_refusal="standard input cannot be read in a suite", cache=True)


def materialize(value: Any, origin: str, cache: SourceReader) -> Any:
    """An inline value as an array, or a source string read through ``cache``."""
    if isinstance(value, str):
        return cache.read(origin, value, origin, lazy=False)
    if isinstance(value, list):
        return _inline_array(value, origin)
    return value


def _named_arrays(value: Any, origin: str, cache: SourceReader) -> Any:
    """``params``: a mapping of arrays, a source of named arrays, or one array."""
    if isinstance(value, dict):
        return {k: materialize(v, f"{origin}.{k}", cache) for k, v in value.items()}
    if isinstance(value, str):
        return cache.read_named(origin, value, origin)
    return materialize(value, origin, cache)


def _inline_array(value: list, origin: str) -> np.ndarray:
    try:
        arr = np.array(value)
    except ValueError:
        raise InputError(f"{origin}: rows of different lengths (a ragged nested list)") from None
    if arr.dtype.kind in "US":  # numbers YAML 1.1 reads as text: 1e-6, .nan
        converted = convert_text(value)
        try:
            arr = np.array(converted, dtype=np.float64)
        except (ValueError, TypeError):
            raise InputError(f"{origin}: expected numbers, found text") from None
    if arr.dtype == object:
        raise InputError(f"{origin}: rows of different lengths or mixed values (not a rectangular array of numbers)")
    return arr


def convert_text(value: Any) -> Any:
    if isinstance(value, list):
        return [convert_text(v) for v in value]
    if isinstance(value, str):
        f = float_text(value)
        return value if f is None else f
    return value


def run_case(case: Case, cache: SourceReader, *, need_grad: bool = False) -> CaseResult:
    """Compute one case and compare it with its expectations. Never raises (errors become results)."""
    from ..api import compute

    start = time.perf_counter()
    result_obj = None
    try:
        call: dict[str, Any] = {}
        origins: dict[str, str] = {}
        array_keys = set(case.array_keys)
        for key, value in case.call.items():
            if key == "params":
                origins[key] = f"params {value}" if isinstance(value, str) else "params"
                call[key] = _named_arrays(value, origins[key], cache)
            elif key in array_keys:
                origin = f"{key} {value}" if isinstance(value, str) else key
                origins[key] = origin
                call[key] = materialize(value, origin, cache)
            else:
                call[key] = value
        want_grad = need_grad or any(k.startswith("grad.") for k in case.expect)
        if case.spec.name in ("lm", "linear-ce"):  # commands of their own (streamed token batches)
            from ..tokens import suite_result

            result_obj = suite_result(call, grad=want_grad, origins=origins)
        else:
            result_obj = compute(call, grad=want_grad, origins=origins)
        expected = {k: materialize(q.value, f"expect.{k} {q.value}" if isinstance(q.value, str) else f"expect.{k}", cache)
                    for k, q in case.expect.items()}
        grads = {k.split(".", 1)[1]: v for k, v in expected.items() if k.startswith("grad.")}
        report = check_result(result_obj, expect=expected.get("loss"), expect_per_sample=expected.get("per_sample"),
                              expect_grad=grads or None, rtol=case.rtol, atol=case.atol)
        status = "pass" if report.comparisons and report.passed else "fail"
        return CaseResult(case, status, report, result_obj, seconds=time.perf_counter() - start)
    except LossctlError as e:
        return CaseResult(case, "error", None, result_obj, error=str(e), error_code=int(ExitCode.INPUT),
                          error_type=type(e).__name__, seconds=time.perf_counter() - start)
    except Exception as e:  # a bug in lossctl: report it on this case, run the others
        return CaseResult(case, "error", None, result_obj, error=f"internal error: {type(e).__name__}: {e}",
                          error_code=int(ExitCode.INTERNAL), error_type=type(e).__name__,
                          seconds=time.perf_counter() - start)


def run_suite(suite: Suite, patterns: Iterable[str] = (), *, need_grad: bool = False,
              on_result: Callable[[CaseResult], None] | None = None) -> SuiteReport:
    """Run the selected cases in order; ``on_result`` sees each result as it is ready."""
    start = time.perf_counter()
    selected = select(suite.cases, patterns)
    cache = suite_reader(suite.base)
    results = []
    for case in selected:
        r = run_case(case, cache, need_grad=need_grad or case.grad)
        results.append(r)
        if on_result is not None:
            on_result(r)
    return SuiteReport(suite, results, deselected=len(suite.cases) - len(selected), seconds=time.perf_counter() - start)


def source_paths(suite: Suite) -> set[Path]:
    """Every file a suite's cases name (inputs and expectations): never to be written over."""
    from ..io.sources import parse_source

    paths: set[Path] = set()
    for case in suite.cases:
        values = [case.call[k] for k in case.array_keys] + [q.value for q in case.expect.values()]
        params = case.call.get("params")
        values += list(params.values()) if isinstance(params, dict) else [params]
        for v in values:
            if isinstance(v, str):
                src = parse_source(v, base=suite.base)
                if src.path is not None:
                    paths.add(src.path)
    return paths
