"""Check suites: load a suite file into cases, run them through :func:`lossctl.api.compute`.

Pure: nothing here prints or writes files. The CLI (``lossctl check``) renders a
:class:`SuiteReport`; :mod:`lossctl.junit` writes it as JUnit XML and
:mod:`lossctl.snapshot` rewrites the ``expect`` values in place (``--update``).

A suite (CONTRACT §5)::

    name: seeds                 # optional: the suite's name in reports (default: the file's stem)
    rtol: 1.0e-9                # optional suite-wide tolerances (same as defaults: {rtol, atol})
    defaults:                   # optional: keys every case gets unless it sets them itself
      reduction: mean
    cases:
      - name: seed-ce           # optional; generated as LOSS-N (N = position, 1-based) when absent
        loss: ce
        logits: [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]   # inline list or number ...
        target: data/y.npy      # ... or a string: a source, paths relative to the suite file
        expect: 0.549329        # or {loss: ..., per_sample: ..., grad: {logits: ...}}
        atol: 1.0e-6

Rules:

* every key of a case is a key of the loss command in snake case: the inputs,
  the loss's parameters, ``reduction``, ``dtype``, ``dim``, ``rtol``, ``atol``,
  ``expect``, ``expect_per_sample``, ``expect_grad``, and the booleans
  ``per_sample`` / ``grad`` (which quantities ``--update`` pins when it adds an
  ``expect``); plus ``name``. Output-only options (``format``, ``output``, ...)
  do not apply. A value is a source (file, ``FILE:KEY``, literal text) iff it
  is a string.
* precedence: a case's own key, then ``defaults``, then the suite's top-level
  ``rtol``/``atol``, then the command-line defaults (rtol 1e-7, atol 1e-9). A
  ``defaults`` parameter applies only to cases whose loss takes it (it must fit
  at least one case).
* a malformed suite (unknown or misspelt key, wrong type, unknown loss, bad
  reduction, a YAML error, ...) raises :class:`~lossctl.errors.InputError`
  naming the file, line, case and key of every problem; no case runs.
* problems that show only when a case runs (a missing file, a wrong shape, an
  out-of-range class index, a missing input) make that case an *error*; the
  other cases still run.
* a case without any expectation fails ("nothing to check").
* exit code of a run: 4 if a case hit an internal error, else 3 if any case is
  an error, else 1 if any case failed a check, else 0.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from .checks import DEFAULT_ATOL, DEFAULT_RTOL, CheckReport, Comparison, check_result
from .errors import ExitCode, InputError, LossctlError
from .registry import PREDICTION_KINDS, LossSpec

TOP_KEYS = ("cases", "defaults", "rtol", "atol", "name")
CALL_KEYS = ("loss", "reduction", "dtype", "dim")
# Regularisation (--l1/--l2 over --params, on any loss): ``params`` is an array, a source of
# named arrays (an .npz, a JSON/YAML mapping) or a mapping name -> array; ``exclude_params`` text.
REG_KEYS = ("l1", "l2", "params", "exclude_params")
CHECK_KEYS = ("rtol", "atol")
EXPECT_KEYS = ("expect", "expect_per_sample", "expect_grad")
FLAG_KEYS = ("per_sample", "grad")
CASE_ONLY_KEYS = ("name",) + EXPECT_KEYS
# Options of the loss command that only shape its output: meaningless in a suite case.
OUTPUT_KEYS = ("format", "json", "explain", "rows", "output", "force", "stdin_format")
EXPECT_PARTS = ("loss", "per_sample", "grad")
DTYPES = ("float64", "float32")
MAX_PROBLEMS = 20


# --------------------------------------------------------------------------- data


@dataclass
class Quantity:
    """One expected quantity of a case: ``key`` is ``loss``, ``per_sample`` or ``grad.NAME``."""

    key: str
    value: Any  # as written: a number, a (nested) list, or a source string
    node: Any = None  # the YAML node it was read from (for --update)


@dataclass
class Case:
    index: int  # 0-based position in the suite's ``cases``
    name: str
    line: int  # 1-based line of the case in the suite file
    spec: LossSpec
    call: dict[str, Any]  # loss, inputs, parameters, reduction, dtype, dim: as written (sources unread)
    expect: dict[str, Quantity] = field(default_factory=dict)
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    per_sample: bool = False  # pin per-sample values when --update adds an expectation
    grad: bool = False  # pin gradients when --update adds an expectation
    node: Any = None  # the case's YAML mapping node
    expect_node: Any = None  # the value node of ``expect`` (None when absent)
    named: bool = True  # False when the name was generated

    @property
    def kind(self) -> str | None:
        """The prediction kind the case gives (``logits``, ``probs``, ...)."""
        for k in self.spec.prediction_kinds:
            if self.call.get(k) is not None:
                return k
        return None

    @property
    def array_keys(self) -> tuple[str, ...]:
        names = set(self.spec.prediction_kinds) | set(self.spec.inputs) | {p.name for p in self.spec.params if p.kind == "array"}
        return tuple(k for k in self.call if k in names)


@dataclass
class Suite:
    path: Path
    name: str
    cases: list[Case]
    text: str = ""
    root: Any = None  # the YAML root node
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    bom: bool = False  # the file starts with a UTF-8 byte order mark (kept by --update)

    @property
    def base(self) -> Path:
        return self.path.parent


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

    @property
    def summary(self) -> str:
        """One line: empty for a pass, the failure or error otherwise."""
        if self.status == "error":
            return self.error
        if self.status == "fail":
            return failure_summary(self)
        return ""


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


# --------------------------------------------------------------------------- loading


def load_suite(path: str | os.PathLike) -> Suite:
    """Read and validate a suite file. Raises :class:`InputError` (exit 3) when it is malformed."""
    path = Path(path)
    shown = str(path)
    if not path.exists():
        raise InputError(f"{shown}: no such file")
    if path.is_dir():
        raise InputError(f"{shown}: is a directory, not a suite file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{shown}: cannot read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{shown}: not UTF-8 text (byte {e.start})") from None
    suite = parse_suite(text, path)
    suite.bom = data.startswith(b"\xef\xbb\xbf")
    return suite


def compose(text: str, shown: str):
    """(root node, data) of a YAML document, with marks for every node; InputError on bad YAML."""
    import yaml

    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        data = _construct(loader, node) if node is not None else None
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark or e.context_mark
        where = f":{mark.line + 1}" if mark else ""
        raise InputError(f"{shown}{where}: unsupported YAML ({e.problem}); a suite holds plain data only") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        if isinstance(e, yaml.reader.ReaderError):
            problem = f"unacceptable character #x{e.character:04x} (position {e.position})" \
                if isinstance(e.character, int) else " ".join(str(e).split())
        else:
            problem = getattr(e, "problem", None) or " ".join(str(e).split())
        context = getattr(e, "context", None)
        raise InputError(f"{shown}{where}: invalid YAML: {problem}" + (f" ({context})" if context else "")) from None
    finally:
        loader.dispose()
    return node, data


_TAG = "tag:yaml.org,2002:"
_DECIMAL = __import__("re").compile(r"^[-+]?(0|[1-9][0-9]*)$")
_SPECIAL_FLOATS = {".nan": math.nan, ".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf}


def _construct(loader, root):
    """Python data from a composed document: plain scalars, lists and mappings converted
    directly (PyYAML's constructor costs ~10 µs a node, which dominates large suites);
    anything unusual (merge keys, 0x/0o/sexagesimal numbers, booleans, timestamps, tags)
    goes through the safe constructor itself."""
    import yaml

    memo: dict[int, Any] = {}

    def build(node):
        key = id(node)
        if key in memo:
            return memo[key]
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            v = node.value
            if tag == _TAG + "str":
                out = v
            elif tag == _TAG + "float" and ":" not in v:
                lowered = v.lower()
                out = _SPECIAL_FLOATS[lowered] if lowered in _SPECIAL_FLOATS else float(v.replace("_", ""))
            elif tag == _TAG + "int" and _DECIMAL.match(v):
                out = int(v)
            elif tag == _TAG + "null":
                out = None
            else:
                out = loader.construct_object(node, deep=True)
        elif isinstance(node, yaml.SequenceNode) and tag == _TAG + "seq":
            out = [build(child) for child in node.value]
        elif isinstance(node, yaml.MappingNode) and tag == _TAG + "map" and \
                all(isinstance(k, yaml.ScalarNode) and k.tag != _TAG + "merge" for k, _ in node.value):
            out = {}
            for k, v in node.value:
                out[build(k)] = build(v)
        else:
            out = loader.construct_object(node, deep=True)
        memo[key] = out
        return out

    try:
        return build(root)
    except (ValueError, TypeError, RecursionError):
        return loader.construct_document(root)


def parse_suite(text: str, path: str | os.PathLike) -> Suite:
    """Validate a suite given as text; ``path`` locates relative sources and names the file in messages."""
    path = Path(path)
    shown = str(path)
    root, data = compose(text, shown)
    from .io.readers import check_expanded_size

    check_expanded_size(data, shown)  # before any walk over the nodes: a "billion laughs" suite fails fast
    problems = _Problems(shown)
    if data is None:
        raise InputError(f"{shown}: empty suite; expected a mapping with a 'cases' list")
    if not isinstance(data, dict):
        raise InputError(f"{shown}:{root.start_mark.line + 1}: expected a mapping with a 'cases' list, "
                         f"found {_type_name(data)}")
    nodes = _key_nodes(root)
    for key in data:
        if isinstance(key, str) and key.startswith("x-"):
            continue  # free extension keys (e.g. YAML anchors shared by cases), as in compose files
        if key not in TOP_KEYS:
            problems.add(_line(nodes, key, root), f"unknown top-level key {_q(key)}{_suggest(key, TOP_KEYS)}")
    _check_duplicate_keys(root, problems, "")

    name = data.get("name", path.stem)
    if not isinstance(name, (str, int, float)) or isinstance(name, bool) or str(name) == "":
        problems.add(_line(nodes, "name", root), "name: expected the suite's name as text")
        name = path.stem
    suite_tol = {}
    for key in CHECK_KEYS:
        if key in data:
            value = _tolerance(data[key])
            if value is None:
                problems.add(_line(nodes, key, root), f"{key}: expected a number ≥ 0, got {_show(data[key])}")
            else:
                suite_tol[key] = value

    defaults = data.get("defaults") or {}
    defaults_node = _value_node(root, "defaults")
    if "defaults" in data and not isinstance(data["defaults"], dict) and data["defaults"] is not None:
        problems.add(_line(nodes, "defaults", root), f"defaults: expected a mapping of case keys, found {_type_name(data['defaults'])}")
        defaults = {}
    defaults_lines = _key_nodes(defaults_node) if defaults_node is not None else {}
    for key in CHECK_KEYS:
        if key in defaults and key in suite_tol:
            problems.add(_line(defaults_lines, key, defaults_node), f"defaults: {key} is also given at the top level; keep one")
    if defaults_node is not None:
        _check_duplicate_keys(defaults_node, problems, "defaults: ")

    cases_raw = data.get("cases")
    cases_node = _value_node(root, "cases")
    if "cases" not in data:
        problems.add(root.start_mark.line + 1, "missing 'cases': a list of cases")
        cases_raw = []
    elif cases_raw is None:
        cases_raw = []
    elif not isinstance(cases_raw, list):
        problems.add(_line(nodes, "cases", root), f"cases: expected a list of cases, found {_type_name(cases_raw)}")
        cases_raw = []

    from .api import registry

    reg = registry()
    case_nodes = list(cases_node.value) if cases_node is not None and hasattr(cases_node, "value") and isinstance(cases_node.value, list) else []
    cases: list[Case] = []
    used_names: dict[str, int] = {}
    default_keys_used: set[str] = set()
    for i, raw in enumerate(cases_raw):
        cnode = case_nodes[i] if i < len(case_nodes) else None
        case = _load_case(i, raw, cnode, defaults, defaults_lines, defaults_node, suite_tol, reg, problems, default_keys_used)
        if case is None:
            continue
        if case.named:
            if case.name in used_names:
                problems.add(case.line, f"case {_q(case.name)}: name {_q(case.name)} is already used by case #{used_names[case.name] + 1}")
            used_names.setdefault(case.name, i)
        cases.append(case)
    for key in defaults:
        if key in CHECK_KEYS or key in CALL_KEYS or key in FLAG_KEYS or key in default_keys_used:
            continue
        if key in CASE_ONLY_KEYS:
            problems.add(_line(defaults_lines, key, defaults_node), f"defaults: {_q(key)} belongs to each case, not to defaults")
        elif key in OUTPUT_KEYS:
            problems.add(_line(defaults_lines, key, defaults_node), f"defaults: {_output_key_message(key)}")
        elif cases:
            valid = _all_case_keys(reg, cases)
            problems.add(_line(defaults_lines, key, defaults_node),
                         f"defaults: no case's loss takes {_q(key)}{_suggest(key, valid)}")
    # Generated names: LOSS-N, unique among the given names.
    for case in cases:
        if not case.named:
            base = f"{case.spec.name}-{case.index + 1}"
            candidate, n = base, 2
            while candidate in used_names:
                candidate, n = f"{base}-{n}", n + 1
            case.name = candidate
            used_names[candidate] = case.index
    problems.raise_if_any()
    tol = {**{"rtol": DEFAULT_RTOL, "atol": DEFAULT_ATOL}, **suite_tol}
    for key in CHECK_KEYS:
        if key in defaults:
            tol[key] = _tolerance(defaults[key])
    return Suite(path=path, name=str(name), cases=cases, text=text, root=root, rtol=tol["rtol"], atol=tol["atol"])


def _load_case(i, raw, cnode, defaults, defaults_lines, defaults_node, suite_tol, reg, problems, default_keys_used) -> Case | None:
    line = cnode.start_mark.line + 1 if cnode is not None else 0
    label = f"case #{i + 1}"
    if not isinstance(raw, dict):
        problems.add(line, f"{label}: expected a mapping of keys (loss, inputs, expect, ...), found {_type_name(raw)}")
        return None
    lines = _key_nodes(cnode) if cnode is not None else {}
    named = "name" in raw and raw["name"] is not None
    if named:
        if isinstance(raw["name"], (dict, list, bool)) or str(raw["name"]).strip() == "":
            problems.add(_line(lines, "name", cnode), f"{label}: name: expected text, got {_show(raw['name'])}")
            named = False
        else:
            label = f"case {_q(str(raw['name']))}"
    _check_duplicate_keys(cnode, problems, f"{label}: ")

    def where(key: str) -> int:
        if key in raw:
            return _line(lines, key, cnode)
        return _line(defaults_lines, key, defaults_node)

    def origin(key: str) -> str:
        return key if key in raw else f"{key} (from defaults)"

    loss_name = raw.get("loss", defaults.get("loss"))
    if loss_name is None:
        problems.add(line, f"{label}: missing key 'loss' (the loss's name, e.g. loss: ce)")
        return None
    if not isinstance(loss_name, str):
        problems.add(where("loss"), f"{label}: loss: expected a loss name, got {_show(loss_name)}")
        return None
    try:
        spec = reg.get(loss_name)
    except LossctlError as e:
        problems.add(where("loss"), f"{label}: loss: {e}")
        return None

    params = {p.name: p for p in spec.params}
    inputs = set(spec.inputs)
    valid = set(CALL_KEYS) | set(CHECK_KEYS) | set(EXPECT_KEYS) | set(FLAG_KEYS) | {"name"} | inputs | set(params) | set(REG_KEYS)
    if not spec.class_axis:
        valid.discard("dim")

    merged: dict[str, Any] = {}
    for key, value in defaults.items():
        if key in CASE_ONLY_KEYS or key in OUTPUT_KEYS:
            continue  # reported once, for the defaults mapping
        if key in valid and key not in raw:
            merged[key] = value
            default_keys_used.add(key)
        elif key in valid:
            default_keys_used.add(key)
    for key, value in raw.items():
        if not isinstance(key, str):
            problems.add(cnode.start_mark.line + 1 if cnode is not None else line, f"{label}: key {_show(key)} is not a name")
            continue
        if key not in valid:
            problems.add(_line(lines, key, cnode), f"{label}: {_unknown_key_message(key, spec, valid, reg)}")
            continue
        merged[key] = value

    case = Case(index=i, name=str(raw["name"]) if named else "", line=line, spec=spec, call={"loss": spec.name},
                node=cnode, named=named, rtol=suite_tol.get("rtol", DEFAULT_RTOL), atol=suite_tol.get("atol", DEFAULT_ATOL))
    for key, value in merged.items():
        if key in ("name", "loss"):
            continue
        at = where(key)
        if key in CHECK_KEYS:
            tol = _tolerance(value)
            if tol is None:
                problems.add(at, f"{label}: {origin(key)}: expected a number ≥ 0, got {_show(value)}")
            else:
                setattr(case, key, tol)
        elif key in FLAG_KEYS:
            if not isinstance(value, bool):
                problems.add(at, f"{label}: {origin(key)}: expected true or false, got {_show(value)}")
            else:
                setattr(case, key, value)
        elif key == "reduction":
            if value not in spec.reductions:
                problems.add(at, f"{label}: {origin(key)}: {spec.name} takes one of {', '.join(spec.reductions)}; got {_show(value)}")
            else:
                case.call[key] = value
        elif key == "dtype":
            if value not in DTYPES:
                problems.add(at, f"{label}: {origin(key)}: expected one of {', '.join(DTYPES)}, got {_show(value)}")
            else:
                case.call[key] = value
        elif key == "dim":
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                problems.add(at, f"{label}: {origin(key)}: expected an integer (the class dimension), got {_show(value)}")
            else:
                case.call[key] = value
        elif key in REG_KEYS and key not in params and key not in inputs:
            ok, converted, problem = _reg_value(key, value)
            if not ok:
                problems.add(at, f"{label}: {origin(key)}: {problem}")
            elif converted is not None:
                case.call[key] = converted
        elif key in inputs:
            problem = _array_problem(value)
            if problem:
                problems.add(at, f"{label}: {origin(key)}: {problem}")
            elif value is not None:
                case.call[key] = value
        elif key in params:
            ok, converted, problem = _param_value(params[key], value)
            if not ok:
                problems.add(at, f"{label}: {origin(key)}: {problem}")
            elif converted is not None:
                case.call[key] = converted
    given = [k for k in spec.prediction_kinds if k in case.call]
    if not given:
        options = ", ".join(spec.kinds)
        problems.add(line, f"{label}: missing the prediction: give one of {options}")
    elif len(given) > 1:
        problems.add(where(given[1]), f"{label}: {' and '.join(given)} given; give exactly one of {', '.join(spec.kinds)}")
    for name in spec.extra_inputs + (("target",) if spec.target != "none" else ()) + tuple(getattr(spec, "aux_inputs", ())):
        if name not in case.call:
            problems.add(line, f"{label}: missing {_q(name)}")
    _load_expect(case, raw, lines, cnode, label, problems)
    return case


def _load_expect(case: Case, raw: dict, lines, cnode, label: str, problems: "_Problems") -> None:
    kind = case.kind
    diff_inputs = set(case.spec.kinds) | set(case.spec.extra_inputs)
    if "expect" in raw:
        value = raw["expect"]
        node = _value_node(cnode, "expect")
        case.expect_node = node
        at = _line(lines, "expect", cnode)
        if isinstance(value, dict):
            enodes = _key_nodes(node)
            _check_duplicate_keys(node, problems, f"{label}: expect: ")
            for part, pvalue in value.items():
                pat = _line(enodes, part, node)
                if part not in EXPECT_PARTS:
                    problems.add(pat, f"{label}: expect: unknown key {_q(part)}{_suggest(str(part), EXPECT_PARTS)} "
                                      f"(expect takes {', '.join(EXPECT_PARTS)})")
                    continue
                pnode = _value_node(node, part)
                if part == "grad":
                    _load_grad(case, pvalue, pnode, pat, f"{label}: expect.grad", kind, diff_inputs, problems)
                    continue
                problem = _array_problem(pvalue)
                if problem:
                    problems.add(pat, f"{label}: expect.{part}: {problem}")
                elif pvalue is not None:
                    case.expect[part] = Quantity(part, pvalue, pnode)
        elif value is not None:
            problem = _array_problem(value)
            if problem:
                problems.add(at, f"{label}: expect: {problem} (or a mapping with {', '.join(EXPECT_PARTS)})")
            else:
                case.expect["loss"] = Quantity("loss", value, node)
    if "expect_per_sample" in raw:
        at = _line(lines, "expect_per_sample", cnode)
        value = raw["expect_per_sample"]
        if "per_sample" in case.expect:
            problems.add(at, f"{label}: expect_per_sample: per-sample values are also given in expect; keep one")
        else:
            problem = _array_problem(value)
            if problem:
                problems.add(at, f"{label}: expect_per_sample: {problem}")
            elif value is not None:
                case.expect["per_sample"] = Quantity("per_sample", value, _value_node(cnode, "expect_per_sample"))
    if "expect_grad" in raw:
        at = _line(lines, "expect_grad", cnode)
        _load_grad(case, raw["expect_grad"], _value_node(cnode, "expect_grad"), at, f"{label}: expect_grad", kind, diff_inputs, problems)


def _load_grad(case, value, node, at, label, kind, diff_inputs, problems) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        gnodes = _key_nodes(node)
        for name, gvalue in value.items():
            gat = _line(gnodes, name, node)
            if name not in diff_inputs and not (case.call.get("params") is not None and
                                                 (name == "params" or str(name).startswith("params."))):
                have = ", ".join(sorted(diff_inputs) + (["params", "params.NAME"] if case.call.get("params") is not None else []))
                problems.add(gat, f"{label}: {case.spec.name} has no gradient for {_q(name)}{_suggest(str(name), sorted(diff_inputs))} "
                                  f"(gradients are for: {have})")
                continue
            problem = _array_problem(gvalue)
            if problem:
                problems.add(gat, f"{label}.{name}: {problem}")
                continue
            key = f"grad.{name}"
            if key in case.expect:
                problems.add(gat, f"{label}: the gradient of {name} is given twice; keep one")
                continue
            case.expect[key] = Quantity(key, gvalue, _value_node(node, name))
        return
    problem = _array_problem(value)
    if problem:
        problems.add(at, f"{label}: {problem} (or a mapping from input name to gradient)")
        return
    if kind is None:
        return  # the missing prediction is reported when the case runs
    key = f"grad.{kind}"
    if key in case.expect:
        problems.add(at, f"{label}: the gradient of {kind} is given twice; keep one")
        return
    case.expect[key] = Quantity(key, value, node)


def _unknown_key_message(key: str, spec: LossSpec, valid: set[str], reg) -> str:
    if key in OUTPUT_KEYS:
        return _output_key_message(key)
    if key in PREDICTION_KINDS:
        return f"{spec.name} does not take {_q(key)}; give one of {', '.join(spec.kinds)}"
    snake = key.replace("-", "_")
    if snake != key and snake in valid:
        return f"unknown key {_q(key)}; keys are snake case: did you mean {_q(snake)}?"
    hint = _suggest(key, sorted(valid))
    if not hint:
        others = sorted({s.name for s in reg.specs if snake in s.param_names or snake in s.inputs})
        if others:
            return f"{spec.name} does not take {_q(key)} (losses that do: {', '.join(others)})"
    return f"unknown key {_q(key)}{hint}"


def _output_key_message(key: str) -> str:
    return f"{_q(key)} is an output option of the command line; it does not apply in a suite"


def _all_case_keys(reg, cases: list[Case]) -> list[str]:
    keys = set(CALL_KEYS) | set(CHECK_KEYS) | set(FLAG_KEYS) | set(PREDICTION_KINDS) | set(REG_KEYS)
    for case in cases:
        keys |= set(case.spec.inputs) | set(case.spec.param_names)
    return sorted(keys)


def _array_problem(value: Any) -> str:
    """Why ``value`` cannot be an array (inline list, number, or a source string); '' when it can."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"expected an array (a list, a number or a file), got {_show(value)}"
    if isinstance(value, (int, float)):
        return ""
    if isinstance(value, str):
        if value.strip() == "-":
            return "standard input ('-') cannot be read in a suite; use a file"
        if not value.strip():
            return "empty text; expected an array (a list, a number or a file)"
        return ""
    if isinstance(value, list):
        return _list_problem(value)
    if isinstance(value, dict):
        return "a mapping, not an array (write a list, a number, or FILE:KEY for one array of a file)"
    return f"expected an array (a list, a number or a file), got {_type_name(value)}"


def _list_problem(value: list) -> str:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool):
            return f"expected numbers in the list, found {_show(item)}"
        elif isinstance(item, str):
            if _float_text(item) is None:
                return f"expected numbers in the list, found text {item!r}"
        elif not isinstance(item, (int, float)):
            return f"expected numbers in the list, found {_type_name(item)}"
    return ""


def _param_value(param, value) -> tuple[bool, Any, str]:
    """(ok, converted value, problem) for one loss parameter."""
    if value is None:
        return True, None, ""
    if param.kind == "array":
        problem = _array_problem(value)
        return (not problem), value, problem
    if param.kind == "bool":
        if isinstance(value, bool):
            return True, value, ""
        return False, None, f"expected true or false, got {_show(value)}"
    if param.kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return True, value, ""
        if isinstance(value, float) and value.is_integer():
            return True, int(value), ""
        return False, None, f"expected an integer, got {_show(value)}"
    if param.kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value), ""
        if isinstance(value, str) and _float_text(value) is not None:
            return True, _float_text(value), ""
        return False, None, f"expected a number, got {_show(value)}"
    if param.kind == "choice":
        if value in param.choices:
            return True, value, ""
        return False, None, f"expected one of {', '.join(map(str, param.choices))}, got {_show(value)}"
    return True, value, ""


def _reg_value(key: str, value) -> tuple[bool, Any, str]:
    if value is None:
        return True, None, ""
    if key in ("l1", "l2"):
        tol = _tolerance(value)
        if tol is None:
            return False, None, f"expected a number ≥ 0 (the penalty's coefficient), got {_show(value)}"
        return True, tol, ""
    if key == "exclude_params":
        if isinstance(value, (dict, list, bool)):
            return False, None, f"expected text (parameters whose name contains it get no penalty), got {_show(value)}"
        return True, str(value), ""
    if isinstance(value, dict):  # params: name -> array
        for name, v in value.items():
            problem = _array_problem(v)
            if isinstance(v, dict):
                problem = "a mapping, not an array"
            if problem:
                return False, None, f"{name}: {problem}"
        return True, {str(k): v for k, v in value.items()}, ""
    problem = _array_problem(value)
    return (not problem), value, problem


def _float_text(text: str) -> float | None:
    """A number written as text (``1e-6``, which YAML 1.1 reads as a string; ``nan``, ``inf``)."""
    t = text.strip().lower()
    if t in (".nan", ".inf", "+.inf", "-.inf"):
        t = t.replace(".", "")
    try:
        return float(t)
    except ValueError:
        return None


def _tolerance(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = _float_text(value)
    if isinstance(value, (int, float)) and not math.isnan(value) and value >= 0:
        return float(value)
    return None


class _Problems:
    def __init__(self, shown: str):
        self.shown = shown
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        items = sorted(self.items, key=lambda t: t[0])
        lines = [f"{self.shown}:{line}: {msg}" if line else f"{self.shown}: {msg}" for line, msg in items[:MAX_PROBLEMS]]
        if len(items) > MAX_PROBLEMS:
            lines.append(f"... and {len(items) - MAX_PROBLEMS} more problems")
        if len(items) > 1:
            lines.insert(0, f"{self.shown}: {len(items)} problems; no case was run")
            raise InputError("\n  ".join(lines))
        raise InputError(lines[0])


# YAML node helpers ------------------------------------------------------------


def _key_nodes(node) -> dict[Any, Any]:
    """Key value → key node of a mapping node (the first occurrence)."""
    out: dict[Any, Any] = {}
    value = getattr(node, "value", None)
    if not isinstance(value, list):
        return out
    for pair in value:
        if isinstance(pair, tuple) and len(pair) == 2:
            k = getattr(pair[0], "value", None)
            if isinstance(k, str):
                out.setdefault(k, pair[0])
    return out


def _value_node(node, key: str):
    """The value node of ``key`` in a mapping node (the last occurrence, as the loader keeps it)."""
    value = getattr(node, "value", None)
    if not isinstance(value, list):
        return None
    found = None
    for pair in value:
        if isinstance(pair, tuple) and len(pair) == 2 and getattr(pair[0], "value", None) == key:
            found = pair[1]
    return found


def _line(key_nodes: Mapping, key: Any, fallback) -> int:
    node = key_nodes.get(key) if isinstance(key, str) else None
    if node is not None:
        return node.start_mark.line + 1
    return fallback.start_mark.line + 1 if fallback is not None else 0


def _check_duplicate_keys(node, problems: _Problems, label: str) -> None:
    value = getattr(node, "value", None)
    if not isinstance(value, list):
        return
    seen: set[str] = set()
    start = node.start_mark.index
    end = node.end_mark.index
    for pair in value:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            continue
        key = pair[0]
        if not (start <= key.start_mark.index <= end):
            continue  # merged in from an anchor (<<: *x)
        k = getattr(key, "value", None)
        if isinstance(k, str):
            if k in seen:
                problems.add(key.start_mark.line + 1, f"{label}key {_q(k)} is given twice")
            seen.add(k)


def _suggest(key: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {_q(close[0])}?" if close else ""


def _q(key: Any) -> str:
    return f"'{key}'"


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _type_name(value)
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text {value!r}" if len(value) <= 40 else "text"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    return type(value).__name__


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


class SourceCache:
    """Reads each source of a suite once (cases often share data files); hands out copies."""

    def __init__(self, base: Path):
        self.base = base
        self._arrays: dict[tuple, np.ndarray] = {}
        self.paths: set[Path] = set()

    def read(self, text: str, origin: str) -> np.ndarray:
        from .io.readers import read_array
        from .io.sources import parse_source

        source = parse_source(text, base=self.base)
        if source.kind == "stdin":
            raise InputError(f"{origin}: standard input cannot be read in a suite")
        key = (source.kind, str(source.path) if source.path is not None else source.text, source.key)
        if source.path is not None:
            self.paths.add(source.path)
        if key not in self._arrays:
            self._arrays[key] = read_array(source, origin)
        return np.array(self._arrays[key], copy=True)

    def read_named(self, text: str, origin: str) -> dict[str, np.ndarray]:
        from .io import readers
        from .io.sources import parse_source

        source = parse_source(text, base=self.base)
        if source.kind == "stdin":
            raise InputError(f"{origin}: standard input cannot be read in a suite")
        if source.path is not None:
            self.paths.add(source.path)
        key = ("named", str(source.path) if source.path is not None else source.text, source.key)
        if key not in self._arrays:
            self._arrays[key] = readers.read_named_arrays(source, origin)
        return {k: np.array(v, copy=True) for k, v in self._arrays[key].items()}


def materialize(value: Any, origin: str, cache: SourceCache) -> Any:
    """An inline value as an array, or a source string read through ``cache``."""
    if isinstance(value, str):
        return cache.read(value, origin)
    if isinstance(value, list):
        return _inline_array(value, origin)
    return value


def _named_arrays(value: Any, origin: str, cache: SourceCache) -> Any:
    """``params``: a mapping of arrays, a source of named arrays, or one array."""
    if isinstance(value, dict):
        return {k: materialize(v, f"{origin}.{k}", cache) for k, v in value.items()}
    if isinstance(value, str):
        return cache.read_named(value, origin)
    return materialize(value, origin, cache)


def _inline_array(value: list, origin: str) -> np.ndarray:
    try:
        arr = np.array(value)
    except ValueError:
        raise InputError(f"{origin}: rows of different lengths (a ragged nested list)") from None
    if arr.dtype.kind in "US":  # numbers YAML 1.1 reads as text: 1e-6, .nan
        converted = _convert_text(value)
        try:
            arr = np.array(converted, dtype=np.float64)
        except (ValueError, TypeError):
            raise InputError(f"{origin}: expected numbers, found text") from None
    if arr.dtype == object:
        raise InputError(f"{origin}: rows of different lengths or mixed values (not a rectangular array of numbers)")
    return arr


def _convert_text(value: Any) -> Any:
    if isinstance(value, list):
        return [_convert_text(v) for v in value]
    if isinstance(value, str):
        f = _float_text(value)
        return value if f is None else f
    return value


def run_case(case: Case, cache: SourceCache, *, need_grad: bool = False) -> CaseResult:
    """Compute one case and compare it with its expectations. Never raises (errors become results)."""
    from .api import compute

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
    cache = SourceCache(suite.base)
    results = []
    for case in selected:
        r = run_case(case, cache, need_grad=need_grad or case.grad)
        results.append(r)
        if on_result is not None:
            on_result(r)
    return SuiteReport(suite, results, deselected=len(suite.cases) - len(selected), seconds=time.perf_counter() - start)


def source_paths(suite: Suite) -> set[Path]:
    """Every file a suite's cases name (inputs and expectations): never to be written over."""
    from .io.sources import parse_source

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


# --------------------------------------------------------------------------- describing


def fmt_value(x: Any) -> str:
    a = np.asarray(x, dtype=np.float64) if not isinstance(x, str) else None
    if a is None:
        return str(x)
    if a.ndim == 0:
        return repr(float(a))
    return np.array2string(a, separator=", ", threshold=12, edgeitems=3, floatmode="maxprec", precision=6).replace("\n", "")


def _at(value: Any, index) -> Any:
    a = np.asarray(value, dtype=np.float64)
    if index is not None and a.ndim == len(index):
        return a[tuple(index)]
    if a.size == 1:
        return a.reshape(())
    return a


def describe_comparison(c: Comparison) -> str:
    """``loss expected 1.5 actual 1.50007 abs 7e-05 rel 4.7e-05 [worst index [1, 2]]``."""
    if c.problem:
        return f"{c.what} {c.problem}"
    expected = _at(c.expected, c.worst_index)
    actual = _at(c.actual, c.worst_index)
    text = (f"{c.what} expected {fmt_value(expected)} actual {fmt_value(actual)} "
            f"abs {c.abs_diff:.3g} rel {c.rel_diff:.3g}")
    if c.worst_index is not None:
        text += f" worst index {list(c.worst_index)}"
    return text


def failure_summary(r: CaseResult) -> str:
    if r.report is None or not r.report.comparisons:
        return "nothing to check (no expect); 'lossctl check --update' pins the current values"
    return "; ".join(describe_comparison(c) for c in r.report.comparisons if not c.passed)


__all__ = ["Case", "CaseResult", "Quantity", "Suite", "SuiteReport", "load_suite", "parse_suite", "run_suite",
           "run_case", "select", "describe_comparison", "failure_summary", "source_paths", "SourceCache"]
