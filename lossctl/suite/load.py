"""Loading a suite: read and validate a suite file into :class:`~lossctl.suite.model.Suite` and its cases."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..core.call import BY_NAME, keys_in, output_only_keys, suite_keys
from ..core.expectations import DEFAULT_ATOL, DEFAULT_RTOL
from ..errors import InputError, LossctlError
from ..core.registry import PREDICTION_KINDS, LossSpec
from .messages import Problems, quote, show, suggest, type_name
from .model import Case, Quantity, Suite
from .values import array_problem, param_value, reg_value, tolerance
from .yamlnodes import check_duplicate_keys, key_node_map, node_line, value_node, compose

TOP_KEYS = ("cases", "defaults", "rtol", "atol", "name")
# A case's keys are the loss command's keys (lossctl.core.call), grouped here by how a case
# reads them; output-only keys (Key.suite False) do not apply in a suite.
CALL_KEYS = ("loss",) + tuple(k for k in keys_in("Parameters") if BY_NAME[k].kind != "source")
# Regularisation (l1/l2 over params, on any loss): ``params`` is an array, a source of named
# arrays (an .npz, a JSON/YAML mapping) or a mapping name -> array; ``exclude_params`` text.
REG_KEYS = keys_in("Regularisation")
EXPECT_KEYS = tuple(k for k in keys_in("Checks") if BY_NAME[k].kind == "source")
CHECK_KEYS = tuple(k for k in keys_in("Checks") if k not in EXPECT_KEYS)
FLAG_KEYS = tuple(k for k in keys_in("Output") if BY_NAME[k].suite)
CASE_ONLY_KEYS = ("name",) + EXPECT_KEYS
OUTPUT_KEYS = output_only_keys()
EXPECT_PARTS = ("loss", "per_sample", "grad")
DTYPES = ("float64", "float32")


def load_suite(path: str | os.PathLike, base: Mapping[str, Any] | None = None) -> Suite:
    """Read and validate a suite file. Raises :class:`InputError` (exit 3) when it is malformed.

    ``base`` holds values of case keys (``rtol``, ``dtype``, ...) that apply where neither a case,
    the suite's ``defaults`` nor its top level gives one (a project's configuration)."""
    path = Path(path)
    shown = str(path)
    if not path.exists():
        raise InputError(f"{shown}: no such file")
    if path.is_dir():
        raise InputError(f"{shown}: is a directory, not a suite file")
    from ..io.readers import read_regular_bytes

    data = read_regular_bytes(path, shown)  # never a device or a FIFO (/dev/zero never ends; a FIFO may block)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{shown}: not UTF-8 text (byte {e.start})") from None
    suite = parse_suite(text, path, base)
    suite.bom = data.startswith(b"\xef\xbb\xbf")
    return suite


def parse_suite(text: str, path: str | os.PathLike, base: Mapping[str, Any] | None = None) -> Suite:
    """Validate a suite given as text; ``path`` locates relative sources and names the file in messages;
    ``base`` as for :func:`load_suite`."""
    base = dict(base or {})
    path = Path(path)
    shown = str(path)
    root, data = compose(text, shown)
    from ..io.readers import check_expanded_size

    check_expanded_size(data, shown)  # before any walk over the nodes: a "billion laughs" suite fails fast
    problems = Problems(shown)
    if data is None:
        raise InputError(f"{shown}: empty suite; expected a mapping with a 'cases' list")
    if not isinstance(data, dict):
        raise InputError(f"{shown}:{root.start_mark.line + 1}: expected a mapping with a 'cases' list, "
                         f"found {type_name(data)}")
    nodes = key_node_map(root)
    for key in data:
        if isinstance(key, str) and key.startswith("x-"):
            continue  # free extension keys (e.g. YAML anchors shared by cases), as in compose files
        if key not in TOP_KEYS:
            problems.add(node_line(nodes, key, root), f"unknown top-level key {quote(key)}{suggest(key, TOP_KEYS)}")
    check_duplicate_keys(root, problems, "")

    name = data.get("name", path.stem)
    if not isinstance(name, (str, int, float)) or isinstance(name, bool) or str(name) == "":
        problems.add(node_line(nodes, "name", root), "name: expected the suite's name as text")
        name = path.stem
    suite_tol = {}
    for key in CHECK_KEYS:
        if key in data:
            value = tolerance(data[key])
            if value is None:
                problems.add(node_line(nodes, key, root), f"{key}: expected a number ≥ 0, got {show(data[key])}")
            else:
                suite_tol[key] = value

    defaults = data.get("defaults") or {}
    defaults_node = value_node(root, "defaults")
    if "defaults" in data and not isinstance(data["defaults"], dict) and data["defaults"] is not None:
        problems.add(node_line(nodes, "defaults", root), f"defaults: expected a mapping of case keys, found {type_name(data['defaults'])}")
        defaults = {}
    defaults_lines = key_node_map(defaults_node) if defaults_node is not None else {}
    for key in CHECK_KEYS:
        if key in defaults and key in suite_tol:
            problems.add(node_line(defaults_lines, key, defaults_node), f"defaults: {key} is also given at the top level; keep one")
    if defaults_node is not None:
        check_duplicate_keys(defaults_node, problems, "defaults: ")
    # the base tolerances lie below the suite's own (and the defaults' ones, which replace them per case)
    suite_tol = {**{k: base[k] for k in CHECK_KEYS if k in base}, **suite_tol}

    cases_raw = data.get("cases")
    cases_node = value_node(root, "cases")
    if "cases" not in data:
        problems.add(root.start_mark.line + 1, "missing 'cases': a list of cases")
        cases_raw = []
    elif cases_raw is None:
        cases_raw = []
    elif not isinstance(cases_raw, list):
        problems.add(node_line(nodes, "cases", root), f"cases: expected a list of cases, found {type_name(cases_raw)}")
        cases_raw = []

    from ..losses import registry

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
        for key, value in base.items():  # the base's call keys where the case has none
            if key not in CHECK_KEYS and key not in case.call and key in case_keys(case.spec):
                case.call[key] = value
        if case.named:
            if case.name in used_names:
                problems.add(case.line, f"case {quote(case.name)}: name {quote(case.name)} is already used by case #{used_names[case.name] + 1}")
            used_names.setdefault(case.name, i)
        cases.append(case)
    for key in defaults:
        if key in CHECK_KEYS or key in CALL_KEYS or key in FLAG_KEYS or key in default_keys_used:
            continue
        if key in CASE_ONLY_KEYS:
            problems.add(node_line(defaults_lines, key, defaults_node), f"defaults: {quote(key)} belongs to each case, not to defaults")
        elif key in OUTPUT_KEYS:
            problems.add(node_line(defaults_lines, key, defaults_node), f"defaults: {_output_key_message(key)}")
        elif cases:
            valid = _all_case_keys(reg, cases)
            problems.add(node_line(defaults_lines, key, defaults_node),
                         f"defaults: no case's loss takes {quote(key)}{suggest(key, valid)}")
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
            tol[key] = tolerance(defaults[key])
    return Suite(path=path, name=str(name), cases=cases, text=text, root=root, rtol=tol["rtol"], atol=tol["atol"])


def _load_case(i, raw, cnode, defaults, defaults_lines, defaults_node, suite_tol, reg, problems, default_keys_used) -> Case | None:
    line = cnode.start_mark.line + 1 if cnode is not None else 0
    label = f"case #{i + 1}"
    if not isinstance(raw, dict):
        problems.add(line, f"{label}: expected a mapping of keys (loss, inputs, expect, ...), found {type_name(raw)}")
        return None
    lines = key_node_map(cnode) if cnode is not None else {}
    named = "name" in raw and raw["name"] is not None
    if named:
        if isinstance(raw["name"], (dict, list, bool)) or str(raw["name"]).strip() == "":
            problems.add(node_line(lines, "name", cnode), f"{label}: name: expected text, got {show(raw['name'])}")
            named = False
        else:
            label = f"case {quote(str(raw['name']))}"
    check_duplicate_keys(cnode, problems, f"{label}: ")

    spelt: dict[str, str] = {}  # an input's key as the case (or the defaults) wrote it (an alias)

    def where(key: str) -> int:
        key = spelt.get(key, key)
        if key in raw:
            return node_line(lines, key, cnode)
        return node_line(defaults_lines, key, defaults_node)

    def origin(key: str) -> str:
        key = spelt.get(key, key)
        return key if key in raw else f"{key} (from defaults)"

    loss_name = raw.get("loss", defaults.get("loss"))
    if loss_name is None:
        problems.add(line, f"{label}: missing key 'loss' (the loss's name, e.g. loss: ce)")
        return None
    if not isinstance(loss_name, str):
        problems.add(where("loss"), f"{label}: loss: expected a loss name, got {show(loss_name)}")
        return None
    try:
        from ..tokens import command_spec

        spec = command_spec(loss_name) or reg.get(loss_name)
    except LossctlError as e:
        problems.add(where("loss"), f"{label}: loss: {e}")
        return None

    params = {p.name: p for p in (*spec.params, *spec.extra_params)}
    inputs = set(spec.inputs) | ({"sample_weight"} if spec.command_keys is None else set())
    valid = case_keys(spec)
    # other names of an input (lm's labels: target) are read as the input
    canonical = {alias: name for name, aliases in spec.input_aliases.items() for alias in aliases}
    valid |= set(canonical)

    def canon(key: Any) -> Any:
        return canonical.get(key, key)

    given_here = {canon(k) for k in raw}
    merged: dict[str, Any] = {}
    for key, value in defaults.items():
        if key in CASE_ONLY_KEYS or key in OUTPUT_KEYS:
            continue  # reported once, for the defaults mapping
        if key in valid and canon(key) not in given_here:
            merged[canon(key)] = value
            spelt[canon(key)] = key
            default_keys_used.add(key)
        elif key in valid:
            default_keys_used.add(key)
    for key, value in raw.items():
        if not isinstance(key, str):
            problems.add(cnode.start_mark.line + 1 if cnode is not None else line, f"{label}: key {show(key)} is not a name")
            continue
        if key not in valid:
            problems.add(node_line(lines, key, cnode), f"{label}: {_unknown_key_message(key, spec, valid, reg)}")
            continue
        if canon(key) in merged and spelt.get(canon(key)) in raw:
            problems.add(node_line(lines, key, cnode), f"{label}: {quote(spelt[canon(key)])} and {quote(key)} are the same input; "
                                                   "give one of them")
            continue
        merged[canon(key)] = value
        spelt[canon(key)] = key

    case = Case(index=i, name=str(raw["name"]) if named else "", line=line, spec=spec, call={"loss": spec.name},
                node=cnode, named=named, rtol=suite_tol.get("rtol", DEFAULT_RTOL), atol=suite_tol.get("atol", DEFAULT_ATOL))
    for key, value in merged.items():
        if key in ("name", "loss"):
            continue
        at = where(key)
        if key in CHECK_KEYS:
            tol = tolerance(value)
            if tol is None:
                problems.add(at, f"{label}: {origin(key)}: expected a number ≥ 0, got {show(value)}")
            else:
                setattr(case, key, tol)
        elif key in FLAG_KEYS:
            if not isinstance(value, bool):
                problems.add(at, f"{label}: {origin(key)}: expected true or false, got {show(value)}")
            else:
                setattr(case, key, value)
        elif key == "reduction":
            if value not in spec.reductions:
                problems.add(at, f"{label}: {origin(key)}: {spec.name} takes one of {', '.join(spec.reductions)}; got {show(value)}")
            else:
                case.call[key] = value
        elif key == "dtype":
            if value not in DTYPES:
                problems.add(at, f"{label}: {origin(key)}: expected one of {', '.join(DTYPES)}, got {show(value)}")
            else:
                case.call[key] = value
        elif key == "convention":
            if value not in spec.convention_names:
                problems.add(at, f"{label}: {origin(key)}: {spec.name} has the conventions {', '.join(spec.convention_names)}; "
                                 f"got {show(value)}")
            else:
                case.call[key] = value
        elif key == "dim":
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                problems.add(at, f"{label}: {origin(key)}: expected an integer (the class dimension), got {show(value)}")
            else:
                case.call[key] = value
        elif key in REG_KEYS and key not in params and key not in inputs:
            ok, converted, problem = reg_value(key, value)
            if not ok:
                problems.add(at, f"{label}: {origin(key)}: {problem}")
            elif converted is not None:
                case.call[key] = converted
        elif key in inputs:
            problem = array_problem(value)
            if problem:
                problems.add(at, f"{label}: {origin(key)}: {problem}")
            elif value is not None:
                case.call[key] = value
        elif key in params:
            ok, converted, problem = param_value(params[key], value)
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
            problems.add(line, f"{label}: missing {quote(name)}")
    _load_expect(case, raw, lines, cnode, label, problems)
    return case


def _load_expect(case: Case, raw: dict, lines, cnode, label: str, problems: "Problems") -> None:
    kind = case.kind
    diff_inputs = set(case.spec.kinds) | set(case.spec.extra_inputs)
    if "expect" in raw:
        value = raw["expect"]
        node = value_node(cnode, "expect")
        case.expect_node = node
        at = node_line(lines, "expect", cnode)
        if isinstance(value, dict):
            enodes = key_node_map(node)
            check_duplicate_keys(node, problems, f"{label}: expect: ")
            for part, pvalue in value.items():
                pat = node_line(enodes, part, node)
                if part not in EXPECT_PARTS:
                    problems.add(pat, f"{label}: expect: unknown key {quote(part)}{suggest(str(part), EXPECT_PARTS)} "
                                      f"(expect takes {', '.join(EXPECT_PARTS)})")
                    continue
                pnode = value_node(node, part)
                if part == "grad":
                    _load_grad(case, pvalue, pnode, pat, f"{label}: expect.grad", kind, diff_inputs, problems)
                    continue
                problem = array_problem(pvalue)
                if problem:
                    problems.add(pat, f"{label}: expect.{part}: {problem}")
                elif pvalue is not None:
                    case.expect[part] = Quantity(part, pvalue, pnode)
        elif value is not None:
            problem = array_problem(value)
            if problem:
                problems.add(at, f"{label}: expect: {problem} (or a mapping with {', '.join(EXPECT_PARTS)})")
            else:
                case.expect["loss"] = Quantity("loss", value, node)
    if "expect_per_sample" in raw:
        at = node_line(lines, "expect_per_sample", cnode)
        value = raw["expect_per_sample"]
        if "per_sample" in case.expect:
            problems.add(at, f"{label}: expect_per_sample: per-sample values are also given in expect; keep one")
        else:
            problem = array_problem(value)
            if problem:
                problems.add(at, f"{label}: expect_per_sample: {problem}")
            elif value is not None:
                case.expect["per_sample"] = Quantity("per_sample", value, value_node(cnode, "expect_per_sample"))
    if "expect_grad" in raw:
        at = node_line(lines, "expect_grad", cnode)
        _load_grad(case, raw["expect_grad"], value_node(cnode, "expect_grad"), at, f"{label}: expect_grad", kind, diff_inputs, problems)


def _load_grad(case, value, node, at, label, kind, diff_inputs, problems) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        gnodes = key_node_map(node)
        for name, gvalue in value.items():
            gat = node_line(gnodes, name, node)
            if name not in diff_inputs and not (case.call.get("params") is not None and
                                                 (name == "params" or str(name).startswith("params."))):
                have = ", ".join(sorted(diff_inputs) + (["params", "params.NAME"] if case.call.get("params") is not None else []))
                problems.add(gat, f"{label}: {case.spec.name} has no gradient for {quote(name)}{suggest(str(name), sorted(diff_inputs))} "
                                  f"(gradients are for: {have})")
                continue
            problem = array_problem(gvalue)
            if problem:
                problems.add(gat, f"{label}.{name}: {problem}")
                continue
            key = f"grad.{name}"
            if key in case.expect:
                problems.add(gat, f"{label}: the gradient of {name} is given twice; keep one")
                continue
            case.expect[key] = Quantity(key, gvalue, value_node(node, name))
        return
    problem = array_problem(value)
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


def case_keys(spec: LossSpec) -> set[str]:
    """Every key a case of ``spec`` takes: the keys of its command (:func:`lossctl.core.call.suite_keys`)
    except the prediction kinds the loss does not take."""
    return set(suite_keys(spec)) - (set(spec.prediction_kinds) - set(spec.kinds))


def _unknown_key_message(key: str, spec: LossSpec, valid: set[str], reg) -> str:
    if key in OUTPUT_KEYS:
        return _output_key_message(key)
    if key in PREDICTION_KINDS:
        return f"{spec.name} does not take {quote(key)}; give one of {', '.join(spec.kinds)}"
    snake = key.replace("-", "_")
    if snake != key and snake in valid:
        return f"unknown key {quote(key)}; keys are snake case: did you mean {quote(snake)}?"
    hint = suggest(key, sorted(valid))
    if not hint:
        others = sorted({s.name for s in reg.specs if snake in s.param_names or snake in s.inputs})
        if others:
            return f"{spec.name} does not take {quote(key)} (losses that do: {', '.join(others)})"
    return f"unknown key {quote(key)}{hint}"


def _output_key_message(key: str) -> str:
    return f"{quote(key)} is an output option of the command line; it does not apply in a suite"


def _all_case_keys(reg, cases: list[Case]) -> list[str]:
    keys = set(CALL_KEYS) | set(CHECK_KEYS) | set(FLAG_KEYS) | set(PREDICTION_KINDS) | set(REG_KEYS)
    for case in cases:
        keys |= set(case.spec.inputs) | set(case.spec.param_names)
    return sorted(keys)
