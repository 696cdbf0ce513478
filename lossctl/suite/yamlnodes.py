"""YAML composition of a suite document: :func:`compose` (root node and data, with marks for every node),
the fast constructor behind it, and helpers that find key/value nodes and their lines."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import InputError
from .messages import quote

if TYPE_CHECKING:
    from .messages import Problems


def compose(text: str, shown: str):
    """(root node, data) of a YAML document, with marks for every node; InputError on bad YAML."""
    import yaml

    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        data = _construct(loader, node) if node is not None else None
    except (ValueError, TypeError, OverflowError, KeyError) as e:  # `!!float abc`, `!!bool maybe`, 5000 digits
        from ..io.readers import scalar_problem

        raise InputError(f"{shown}: invalid YAML: {scalar_problem(e)}") from None
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



def key_node_map(node) -> dict[Any, Any]:
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


def value_node(node, key: str):
    """The value node of ``key`` in a mapping node (the last occurrence, as the loader keeps it)."""
    value = getattr(node, "value", None)
    if not isinstance(value, list):
        return None
    found = None
    for pair in value:
        if isinstance(pair, tuple) and len(pair) == 2 and getattr(pair[0], "value", None) == key:
            found = pair[1]
    return found


def node_line(key_nodes: Mapping, key: Any, fallback) -> int:
    node = key_nodes.get(key) if isinstance(key, str) else None
    if node is not None:
        return node.start_mark.line + 1
    return fallback.start_mark.line + 1 if fallback is not None else 0


def check_duplicate_keys(node, problems: Problems, label: str) -> None:
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
                problems.add(key.start_mark.line + 1, f"{label}key {quote(k)} is given twice")
            seen.add(k)
