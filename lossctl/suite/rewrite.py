"""Targeted text rewriting of suite files: ``lossctl check --update`` and ``lossctl record``.

PyYAML cannot round-trip comments, so nothing here re-dumps a suite. Each change
is a text edit located by the YAML node marks of :func:`lossctl.suite.compose`:
a failing expected value is replaced in its own span, a missing ``expect`` is
inserted after the case's last line with the case's indentation, a recorded
case is appended after the last one. Every other byte of the file stays as it
was. Each new text is parsed again and checked before it is written; the file
is replaced atomically. Data files are never written: an expectation that
comes from a file is reported, not rewritten.

Floats are written with ``repr`` (so they round-trip), spelt so that YAML 1.1
reads them back as floats (``1.0e-05``, not ``1e-05``; ``.nan``, ``.inf``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .load import parse_suite
from .model import Case, Suite
from .run import SuiteReport
from .yamlnodes import compose, key_node_map, value_node

WIDTH = 100
_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./:+=@,-]*$")


# --------------------------------------------------------------------------- YAML text


def yaml_float(x: float) -> str:
    x = float(x)
    if math.isnan(x):
        return ".nan"
    if math.isinf(x):
        return ".inf" if x > 0 else "-.inf"
    s = repr(x)
    if "e" in s:
        mantissa, exp = s.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        s = f"{mantissa}e{exp}"
    return s


def yaml_scalar(value: Any) -> str:
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return yaml_float(value)
    if value is None:
        return "null"
    if isinstance(value, str):
        return yaml_string(value)
    raise TypeError(f"not a YAML scalar: {value!r}")


def yaml_string(text: str) -> str:
    """A plain scalar when YAML reads it back as this very string, else a double-quoted one."""
    if _PLAIN.match(text) and ": " not in text and " #" not in text:
        import yaml

        try:
            if yaml.safe_load(text) == text:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text, ensure_ascii=False)


def to_plain(value: Any) -> Any:
    """Python numbers and nested lists from arrays and NumPy scalars."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return to_plain(value.item())
        return [to_plain(v) for v in value]
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def yaml_flow(value: Any, col: int = 0, width: int = WIDTH) -> str:
    """A number, string or nested list in flow style; wrapped (continuation lines aligned after
    the opening bracket) when it would pass ``width`` with its first character at column ``col``."""
    value = to_plain(value)
    if not isinstance(value, list):
        return yaml_scalar(value)
    one = one_line(value)
    if col + len(one) <= width or not value:
        return one
    pad = " " * (col + 1)
    if all(not isinstance(v, list) for v in value):
        lines, line = [], ""
        for v in value:
            item = yaml_scalar(v)
            if line and col + 1 + len(line) + len(item) + 2 > width:
                lines.append(line)
                line = ""
            line = f"{line}, {item}" if line else item
        lines.append(line)
        return "[" + (",\n" + pad).join(lines) + "]"
    parts = [yaml_flow(v, col + 1, width) for v in value]
    return "[" + (",\n" + pad).join(parts) + "]"


def one_line(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(one_line(v) for v in value) + "]"
    return yaml_scalar(value)


# --------------------------------------------------------------------------- node geometry


def _is_block(node) -> bool:
    import yaml

    return isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style


def content_end(node) -> int:
    """Index just after a node's last character (block collections' marks run on to the next token)."""
    import yaml

    while _is_block(node) and node.value:
        if isinstance(node, yaml.MappingNode):
            own = [(k, v) for k, v in node.value if node.start_mark.index <= k.start_mark.index <= node.end_mark.index]
            if not own:
                return node.start_mark.index
            key, value = max(own, key=lambda kv: kv[0].start_mark.index)
            if not (node.start_mark.index <= value.start_mark.index <= node.end_mark.index):
                return key.end_mark.index  # an alias: its marks are the anchor's
            node = value
        else:
            last = node.value[-1]
            if not (node.start_mark.index <= last.start_mark.index <= node.end_mark.index):
                return node.start_mark.index
            node = last
    return node.end_mark.index


def _after_line(text: str, index: int) -> tuple[int, str]:
    """(insertion index at the start of the line after ``index``, prefix needed there)."""
    nl = text.find("\n", index)
    if nl < 0:
        return len(text), "\n"
    return nl + 1, ""


def _first_key_column(node) -> int:
    """The indentation of a block mapping's own keys (merged keys, ``<<: *x``, sit elsewhere)."""
    for key, _ in node.value:
        if node.start_mark.index <= key.start_mark.index <= node.end_mark.index:
            return key.start_mark.column
    return node.start_mark.column


def _closing(text: str, node, char: str) -> int:
    """Index of the closing bracket of a flow collection."""
    i = node.end_mark.index - 1
    while i > node.start_mark.index and text[i] != char:
        i -= 1
    return i


def _shared_nodes(root) -> set[int]:
    """ids of nodes that appear more than once in the tree (YAML aliases)."""
    seen: set[int] = set()
    shared: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if id(node) in seen:
            shared.add(id(node))
            continue
        seen.add(id(node))
        value = getattr(node, "value", None)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, tuple):
                    stack.extend(item)
                else:
                    stack.append(item)
    return shared


@dataclass
class Edit:
    start: int
    end: int
    text: str


def apply_edits(text: str, edits: list[Edit]) -> str:
    edits = sorted(edits, key=lambda e: (e.start, e.end))
    for a, b in zip(edits, edits[1:]):
        if b.start < a.end:
            raise RuntimeError("overlapping suite edits")
    out = []
    pos = 0
    for e in edits:
        out.append(text[pos:e.start])
        out.append(e.text)
        pos = e.end
    out.append(text[pos:])
    return "".join(out)


# --------------------------------------------------------------------------- --update


@dataclass
class Change:
    case: str
    what: str  # loss, per_sample, grad.NAME
    action: str  # "updated" | "added" | "kept"
    old: Any = None
    new: Any = None
    reason: str = ""


@dataclass
class UpdatePlan:
    text: str
    changes: list[Change] = field(default_factory=list)

    @property
    def written(self) -> list[Change]:
        return [c for c in self.changes if c.action in ("updated", "added")]

    @property
    def kept(self) -> list[Change]:
        return [c for c in self.changes if c.action == "kept"]

    def cases_changed(self) -> set[str]:
        return {c.case for c in self.written}


def _actual(result, key: str) -> Any:
    if key == "loss":
        return result.loss
    if key == "per_sample":
        return result.per_sample
    return result.grad[key.split(".", 1)[1]]


def plan_update(suite: Suite, report: SuiteReport) -> UpdatePlan:
    """The new suite text with failing expectations rewritten and missing ones added, and the changes."""
    from ..io.sources import parse_source

    text = suite.text
    shared = _shared_nodes(suite.root)
    edits: list[Edit] = []
    changes: list[Change] = []
    for r in report.results:
        if r.status == "error" or r.result is None:
            continue
        case = r.case
        failing = {c.what for c in r.report.comparisons if not c.passed} if r.report else set()
        case_start = case.node.start_mark.index
        case_end = content_end(case.node)
        if id(case.node) in shared:
            for key in sorted(failing):
                changes.append(Change(case.name, key, "kept", reason="is in a case written as a YAML alias; edit it by hand"))
            continue

        def editable(node) -> str:
            if node is None:
                return "has no place in the file to rewrite"
            if id(node) in shared or not (case_start <= node.start_mark.index <= case_end):
                return "comes from a YAML anchor shared with other cases; edit it by hand"
            return ""

        rewritten: dict[str, Any] = {}
        for key in [k for k in case.expect if k in failing]:
            q = case.expect[key]
            new = to_plain(np.asarray(_actual(r.result, key), dtype=np.float64))
            if isinstance(q.value, str):
                src = parse_source(q.value, base=suite.base)
                if src.kind == "path":
                    changes.append(Change(case.name, key, "kept", q.value, new,
                                          reason=f"comes from {q.value}; lossctl never writes data files "
                                                 f"(update the file, or replace it with the values)"))
                    continue
            why = editable(q.node)
            if why:
                changes.append(Change(case.name, key, "kept", q.value, new, reason=why))
                continue
            edits.append(_replace_value(text, q.node, new))
            changes.append(Change(case.name, key, "updated", q.value, new))
            rewritten[key] = new

        additions = _missing(case, r.result)
        if additions:
            try:
                added = _add_expect(text, case, additions, rewritten, editable)
                for a in added:  # a replaced span absorbs the edits inside it (the loss it rewrites)
                    if a.end > a.start:
                        edits = [e for e in edits if not (a.start <= e.start and e.end <= a.end)]
                edits.extend(added)
            except _Skip as e:
                for key, value in additions:
                    changes.append(Change(case.name, key, "kept", None, value, reason=str(e)))
                continue
            for key, value in additions:
                changes.append(Change(case.name, key, "added", None, value))
    if "\r\n" in text:  # a file with CRLF line ends gets CRLF in the new lines too
        edits = [Edit(e.start, e.end, _crlf(e.text)) for e in edits]
    new_text = apply_edits(text, edits) if edits else text
    plan = UpdatePlan(new_text, changes)
    if edits:
        _verify_update(suite, plan)
    return plan


def _replace_value(text: str, node, new: Any) -> Edit:
    """A value rewritten in place. A block sequence (``key:`` then ``- x`` lines) becomes a flow
    list on the key's line when only blanks separate the two."""
    start, end = node.start_mark.index, content_end(node)
    if _is_block(node):
        colon = start - 1
        while colon >= 0 and text[colon] in " \t\r\n":
            colon -= 1
        if colon >= 0 and text[colon] == ":":
            col = colon + 2 - (text.rfind("\n", 0, colon) + 1)
            return Edit(colon + 1, end, " " + yaml_flow(new, col))
    return Edit(start, end, yaml_flow(new, node.start_mark.column))


def _missing(case: Case, result) -> list[tuple[str, Any]]:
    """Quantities --update adds: the loss when nothing is expected yet, per-sample values and
    gradients when the case asks for them (per_sample: true, grad: true)."""
    out = []
    if not case.expect:
        out.append(("loss", to_plain(np.asarray(result.loss, dtype=np.float64))))
    if case.per_sample and "per_sample" not in case.expect:
        out.append(("per_sample", to_plain(np.asarray(result.per_sample, dtype=np.float64))))
    if case.grad:
        for name, g in result.grad.items():
            if f"grad.{name}" not in case.expect:
                out.append((f"grad.{name}", to_plain(np.asarray(g, dtype=np.float64))))
    return out


class _Skip(Exception):
    pass


def _nest(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """[("loss", v), ("grad.logits", g)] -> [("loss", v), ("grad", {"logits": g})]."""
    out: list[tuple[str, Any]] = []
    grads: dict[str, Any] = {}
    for key, value in items:
        if key.startswith("grad."):
            if not grads:
                out.append(("grad", grads))
            grads[key.split(".", 1)[1]] = value
        else:
            out.append((key, value))
    return out


def _add_expect(text: str, case: Case, additions: list[tuple[str, Any]], rewritten: dict, editable) -> list[Edit]:
    import yaml

    cnode = case.node
    enode = case.expect_node
    if enode is None:  # no `expect` key: add one to the case
        entries = _nest(additions)
        value: Any = entries[0][1] if [k for k, _ in additions] == ["loss"] else dict(entries)
        return [_insert_entries(text, cnode, [("expect", value)])]
    why = editable(enode)
    if why:
        raise _Skip(f"expect {why}")
    key_node = key_node_map(cnode).get("expect")
    if isinstance(enode, yaml.ScalarNode) and enode.tag.endswith(":null"):
        entries = _nest(additions)
        if [k for k, _ in additions] == ["loss"]:
            return [Edit(enode.start_mark.index, enode.end_mark.index if enode.value else enode.start_mark.index,
                         (" " if not enode.value else "") + yaml_flow(additions[0][1], key_node.end_mark.column + 2))]
        return [_replace_with_mapping(text, cnode, key_node, enode, entries, leading_space=not enode.value)]
    if isinstance(enode, yaml.MappingNode):
        edits = []
        grad_adds = [(k.split(".", 1)[1], v) for k, v in additions if k.startswith("grad.")]
        plain_adds = [(k, v) for k, v in additions if not k.startswith("grad.")]
        gnode = value_node(enode, "grad")
        if grad_adds and isinstance(gnode, yaml.MappingNode):
            if editable(gnode):
                raise _Skip(f"expect.grad {editable(gnode)}")
            edits.append(_insert_entries(text, gnode, grad_adds))
        elif grad_adds:
            plain_adds.append(("grad", dict(grad_adds)))
        if plain_adds:
            edits.append(_insert_entries(text, enode, plain_adds))
        if len(edits) == 2 and edits[0].start == edits[1].start:
            # both at one point (grad is the last key of a block mapping): the gradients first
            edits = [Edit(edits[0].start, edits[0].end, edits[0].text + edits[1].text)]
        return edits
    # `expect: VALUE` (the loss alone): turn it into a mapping holding the loss and the additions.
    start, end = enode.start_mark.index, content_end(enode)
    old = text[start:end]
    loss_value: Any = rewritten.get("loss", case.expect["loss"].value if "loss" in case.expect else None)
    if "loss" not in rewritten and "\n" not in old:
        loss_value = _Raw(old)
    entries = [("loss", loss_value)] + _nest(additions)
    return [_replace_with_mapping(text, cnode, key_node, enode, entries, leading_space=False)]


class _Raw(str):
    """Text kept exactly as it was written."""


def _render_value(value: Any, col: int) -> str:
    if isinstance(value, _Raw):
        return str(value)
    return yaml_flow(value, col)


def _block_lines(entries, indent: int) -> list[str]:
    lines = []
    pad = " " * indent
    for key, value in entries:
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.extend(_block_lines(list(value.items()), indent + 2))
        else:
            lines.append(f"{pad}{key}: " + _render_value(value, indent + len(key) + 2))
    return lines


def _flow_text(entries, col: int) -> str:
    parts = []
    pos = col + 1
    for key, value in entries:
        if isinstance(value, dict):
            body = _flow_text(list(value.items()), pos + len(key) + 2)
        else:
            body = _render_value(value, pos + len(key) + 2)
        parts.append(f"{key}: {body}")
        pos += len(parts[-1]) + 2
    return "{" + ", ".join(parts) + "}"


def _replace_with_mapping(text: str, cnode, key_node, vnode, entries, *, leading_space: bool) -> Edit:
    start = vnode.start_mark.index
    end = content_end(vnode) if vnode.end_mark.index > start else start
    if cnode.flow_style:
        return Edit(start, end, (" " if leading_space else "") + _flow_text(entries, key_node.end_mark.column + 2))
    # block: `expect:` then the mapping on the following lines, two spaces deeper than the key;
    # a comment after the old value stays on the `expect:` line
    indent = key_node.start_mark.column + 2
    s = start
    while s > 0 and text[s - 1] == " ":
        s -= 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    rest = text[end:line_end]
    comment = ""
    if rest.strip().startswith("#"):
        comment, end = rest.rstrip("\r"), end + len(rest.rstrip("\r"))
        if not comment.startswith((" ", "\t")):
            comment = " " + comment
    return Edit(s, end, comment + "\n" + "\n".join(_block_lines(entries, indent)))


def _insert_entries(text: str, mapping, entries: list[tuple[str, Any]]) -> Edit:
    """New key/value entries at the end of a mapping node (block: new lines; flow: before the '}')."""
    if mapping.flow_style or not mapping.value:
        close = _closing(text, mapping, "}")
        if close <= mapping.start_mark.index or text[close] != "}":
            raise _Skip("is not a mapping lossctl can extend; edit it by hand")
        sep = ", " if mapping.value else ""
        col = close - (text.rfind("\n", 0, close) + 1)
        return Edit(close, close, sep + _flow_text(entries, col + len(sep))[1:-1])
    indent = _first_key_column(mapping)
    at, prefix = _after_line(text, content_end(mapping))
    return Edit(at, at, prefix + "\n".join(_block_lines(entries, indent)) + "\n")


def _verify_update(suite: Suite, plan: UpdatePlan) -> None:
    """Parse the new text: same cases, every written value reads back exactly, nothing else moved."""
    new = parse_suite(plan.text, suite.path)
    if [c.name for c in new.cases] != [c.name for c in suite.cases]:
        raise RuntimeError("--update changed the suite's cases; nothing was written")
    written = {(c.case, c.what): c.new for c in plan.written}
    for old_case, new_case in zip(suite.cases, new.cases):
        if old_case.call != new_case.call or (old_case.rtol, old_case.atol) != (new_case.rtol, new_case.atol):
            raise RuntimeError(f"--update changed case {old_case.name!r} beyond its expect values; nothing was written")
        keys = set(old_case.expect) | set(new_case.expect)
        for key in keys:
            if (old_case.name, key) in written:
                got = new_case.expect.get(key)
                if got is None or not _same(got.value, written[(old_case.name, key)]):
                    raise RuntimeError(f"--update wrote {old_case.name}.{key} wrongly; nothing was written")
            elif key not in old_case.expect or key not in new_case.expect or \
                    not _same_raw(old_case.expect[key].value, new_case.expect[key].value):
                raise RuntimeError(f"--update changed {old_case.name}.{key} unexpectedly; nothing was written")


def _same(raw: Any, value: Any) -> bool:
    from .run import convert_text

    try:
        a = np.asarray(convert_text(to_plain(raw)), dtype=np.float64)
        b = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def _same_raw(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return _same(a, b)


# --------------------------------------------------------------------------- record


SUITE_HEADER = ("# A lossctl check suite (`lossctl check {name}`), made by `lossctl record`.\n"
                "# Paths are relative to this file. `lossctl check {name} --update` re-pins failing values.\n")


def append_case(text: str | None, path: Path, entries: list[tuple[str, Any]]) -> str:
    """The suite text with one more case (``entries``: the case's keys in order) at the end of ``cases``."""
    import yaml

    path = Path(path)
    if text is None or not text.strip():
        head = SUITE_HEADER.format(name=path.name) if text is None or not text else text
        if head and not head.endswith("\n"):
            head += "\n"
        return head + "cases:\n" + _item_lines(entries, 2, 4) + "\n"
    root, data = compose(text, str(path))
    if root is None:  # comments only
        sep = "" if text.endswith("\n") else "\n"
        return text + _nl(text, sep + "cases:\n" + _item_lines(entries, 2, 4) + "\n")
    if not isinstance(root, yaml.MappingNode):
        raise InputError(f"{path}: expected a mapping with a 'cases' list; not adding a case to it")
    cases = value_node(root, "cases")
    key = key_node_map(root).get("cases")
    if cases is None:
        if root.flow_style:
            raise InputError(f"{path}: a suite written as one flow mapping; add 'cases:' by hand")
        indent = _first_key_column(root)
        at, prefix = _after_line(text, content_end(root))
        block = prefix + " " * indent + "cases:\n" + _item_lines(entries, indent + 2, indent + 4) + "\n"
        return text[:at] + _nl(text, block) + text[at:]
    if isinstance(cases, yaml.ScalarNode) and cases.tag.endswith(":null"):
        indent = key.start_mark.column + 2
        start = cases.start_mark.index
        end = cases.end_mark.index if cases.value else start
        s = start
        while s > 0 and text[s - 1] == " ":
            s -= 1
        return text[:s] + _nl(text, "\n" + _item_lines(entries, indent, indent + 2)) + text[end:]
    if not isinstance(cases, yaml.SequenceNode):
        raise InputError(f"{path}: 'cases' is not a list; not adding a case to it")
    if cases.flow_style or not cases.value:
        close = _closing(text, cases, "]")
        if cases.value:
            col = close - (text.rfind("\n", 0, close) + 1)
            return text[:close] + _nl(text, ", " + _flow_text(entries, col + 2)) + text[close:]
        # `cases: []`: replace the empty list with a block list
        indent = key.start_mark.column + 2
        s = cases.start_mark.index
        while s > 0 and text[s - 1] == " ":
            s -= 1
        return text[:s] + _nl(text, "\n" + _item_lines(entries, indent, indent + 2)) + text[cases.end_mark.index:]
    first = cases.value[0]
    line_start = text.rfind("\n", 0, first.start_mark.index) + 1
    dash = text.rfind("-", line_start, first.start_mark.index)
    dash_col = dash - line_start if dash >= 0 else max(first.start_mark.column - 2, 0)
    content_col = first.start_mark.column if dash >= 0 else dash_col + 2
    at, prefix = _after_line(text, content_end(cases))
    return text[:at] + _nl(text, prefix + _item_lines(entries, dash_col, content_col) + "\n") + text[at:]


def _crlf(s: str) -> str:
    return s.replace("\r\n", "\n").replace("\n", "\r\n")


def _nl(text: str, s: str) -> str:
    """``s`` with the line ends of ``text`` (CRLF when the file uses them)."""
    return _crlf(s) if "\r\n" in text else s


def _item_lines(entries: list[tuple[str, Any]], dash_col: int, content_col: int) -> str:
    lines = _block_lines(entries, content_col)
    first = lines[0]
    lines[0] = " " * dash_col + "-" + " " * (content_col - dash_col - 1) + first[content_col:]
    return "\n".join(lines)


__all__ = ["plan_update", "UpdatePlan", "Change", "append_case", "yaml_flow", "yaml_float", "yaml_string"]
