"""Validation of a suite's values: arrays (inline lists, numbers, sources), loss parameters,
regularisation keys, tolerances. Each check returns the problem as text (empty when there is none)."""

from __future__ import annotations

import math
from typing import Any

from .messages import show, type_name


def array_problem(value: Any) -> str:
    """Why ``value`` cannot be an array (inline list, number, or a source string); '' when it can."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"expected an array (a list, a number or a file), got {show(value)}"
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
    return f"expected an array (a list, a number or a file), got {type_name(value)}"


def _list_problem(value: list) -> str:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool):
            return f"expected numbers in the list, found {show(item)}"
        elif isinstance(item, str):
            if float_text(item) is None:
                return f"expected numbers in the list, found text {item!r}"
        elif not isinstance(item, (int, float)):
            return f"expected numbers in the list, found {type_name(item)}"
    return ""


def param_value(param, value) -> tuple[bool, Any, str]:
    """(ok, converted value, problem) for one loss parameter."""
    if value is None:
        return True, None, ""
    if param.kind == "array":
        problem = array_problem(value)
        return (not problem), value, problem
    if param.kind == "bool":
        if isinstance(value, bool):
            return True, value, ""
        return False, None, f"expected true or false, got {show(value)}"
    if param.kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return True, value, ""
        if isinstance(value, float) and value.is_integer():
            return True, int(value), ""
        return False, None, f"expected an integer, got {show(value)}"
    if param.kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value), ""
        if isinstance(value, str) and float_text(value) is not None:
            return True, float_text(value), ""
        return False, None, f"expected a number, got {show(value)}"
    if param.kind == "choice":
        if value in param.choices:
            return True, value, ""
        return False, None, f"expected one of {', '.join(map(str, param.choices))}, got {show(value)}"
    return True, value, ""


def reg_value(key: str, value) -> tuple[bool, Any, str]:
    if value is None:
        return True, None, ""
    if key in ("l1", "l2"):
        tol = tolerance(value)
        if tol is None:
            return False, None, f"expected a number ≥ 0 (the penalty's coefficient), got {show(value)}"
        return True, tol, ""
    if key == "exclude_params":
        if isinstance(value, (dict, list, bool)):
            return False, None, f"expected text (parameters whose name contains it get no penalty), got {show(value)}"
        return True, str(value), ""
    if isinstance(value, dict):  # params: name -> array
        for name, v in value.items():
            problem = array_problem(v)
            if isinstance(v, dict):
                problem = "a mapping, not an array"
            if problem:
                return False, None, f"{name}: {problem}"
        return True, {str(k): v for k, v in value.items()}, ""
    problem = array_problem(value)
    return (not problem), value, problem


def float_text(text: str) -> float | None:
    """A number written as text (``1e-6``, which YAML 1.1 reads as a string; ``nan``, ``inf``)."""
    t = text.strip().lower()
    if t in (".nan", ".inf", "+.inf", "-.inf"):
        t = t.replace(".", "")
    try:
        return float(t)
    except ValueError:
        return None


def tolerance(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = float_text(value)
    if isinstance(value, (int, float)) and not math.isnan(value) and value >= 0:
        return float(value)
    return None
