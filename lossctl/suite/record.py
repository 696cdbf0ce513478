"""``lossctl record``: append a computed loss call to a suite file as a case pinned to its values.

The case holds the call's keys in the command's order, only where they differ from the
defaults: inputs given as files stay references (their paths rewritten relative to the suite),
literals and standard input are written inline, the tolerances come last, then ``expect``
(the loss; with ``per_sample``/``grad`` also those). The file is appended to with
:func:`lossctl.suite.rewrite.append_case`, so everything already in it stays as written; the
new text must load with the new case last before it replaces the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..core.call import BY_NAME, COMPUTE_GROUPS, array_keys, call_keys
from ..core.registry import LossSpec
from ..errors import InputError, UsageError, ref
from ..io.sources import parse_source
from ..io.writers import check_target, locked, write_text
from .load import parse_suite
from .rewrite import append_case, to_plain
from .yamlnodes import compose


def record_case(spec: LossSpec, given: Mapping[str, Any], call: Mapping[str, Any], result, to_text: str | Path,
                name: str | None = None, *, per_sample: bool = False, grad: bool = False) -> str:
    """Append the case of ``spec`` called with ``given`` (each key's value as the user gave it:
    source text or value) to the suite ``to`` (created, with its folder, when missing); ``call``
    holds the arrays read and ``result`` the values to pin. Returns the case's name.

    The file is read, extended and replaced under a lock, so that no other writer comes between."""
    what = f"{ref('to')} {os.fspath(to_text)}"  # the path as given
    to = Path(to_text)
    if not to.parent.exists() and str(to.parent):
        try:
            to.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{what}: cannot create {to.parent}: {e.strerror or e}") from None
    with locked(to, what=what) as target:
        text, names, count, bom = _existing(target, to, what)
        if name is None:
            n = count + 1
            name = f"{spec.name}-{n}"
            while name in names:
                n += 1
                name = f"{spec.name}-{n}"
        elif name in names:
            raise UsageError(f"{ref('name')} {name}: {to} already has a case of that name; choose another")

        entries = [("name", name), ("loss", spec.name)] + _call_entries(spec, given, call, to)
        entries.append(("expect", _expect(result, per_sample=per_sample, grad=grad)))

        new_text = append_case(text, to, entries)
        check = parse_suite(new_text, to)  # the new file must load, with the new case last
        if len(check.cases) != count + 1 or check.cases[-1].name != name:
            raise RuntimeError("record produced a suite without the new case; nothing was written")
        check_target(target, what=what)  # still a writable regular file
        write_text(target, ("\ufeff" if bom else "") + new_text, what=what)
    return name


def _existing(target: Path, to: Path, what: str) -> tuple[str | None, set[str], int, bool]:
    """The suite's text (None when there is none), its case names and count, and whether it has a BOM."""
    if not target.exists():
        return None, set(), 0, False
    try:
        raw = target.read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{what}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    bom = raw.startswith(b"\xef\xbb\xbf")
    root, data = compose(text, str(to))
    # not empty, not only comments, not a mapping still waiting for its `cases:`
    if root is not None and not (isinstance(data, dict) and "cases" not in data):
        existing = parse_suite(text, to)
        return text, {c.name for c in existing.cases}, len(existing.cases), bom
    return text, set(), 0, bom


def default(spec: LossSpec, key: str) -> Any:
    """The value a key of ``spec``'s call has when it is not given."""
    if key in BY_NAME:
        return BY_NAME[key].default
    for p in spec.all_params:
        if p.name == key:
            return p.default if p.kind != "array" else None
    return None


def _call_entries(spec: LossSpec, given: Mapping[str, Any], call: Mapping[str, Any], to: Path) -> list[tuple[str, Any]]:
    """The computation's keys (the command's order; only what differs from the defaults), then the tolerances."""
    array_names = set(array_keys(spec))
    suite_dir = Path(os.path.abspath(to.parent if str(to.parent) else "."))
    kept = {"rtol", "atol"}
    skip = {k for k in call_keys(spec) if k in BY_NAME and BY_NAME[k].group not in COMPUTE_GROUPS} - kept
    if given.get("params") is None:
        skip.add("exclude_params")
    entries, tolerances = [], []
    for key in call_keys(spec):
        value = given.get(key)
        if key in skip or value is None or (value == default(spec, key) and key not in array_names):
            continue
        if key in array_names or key == "params":
            source = parse_source(value)
            if source.kind == "path":
                rel = _relative(Path(os.path.abspath(source.path)), suite_dir)
                entries.append((key, rel + (f":{source.key}" if source.key else "")))
            elif key == "params" and isinstance(call[key], dict) and list(call[key]) != ["params"]:
                entries.append((key, {k: to_plain(np.asarray(v)) for k, v in call[key].items()}))
            else:  # a literal or standard input: the values inline
                inline = call[key]["params"] if isinstance(call[key], dict) else call[key]
                entries.append((key, to_plain(np.asarray(inline))))
        elif key in kept:
            tolerances.append((key, value))
        else:
            entries.append((key, value))
    return entries + tolerances


def _expect(result, *, per_sample: bool, grad: bool) -> Any:
    loss = to_plain(np.asarray(result.loss, dtype=np.float64))
    if not (per_sample or grad):
        return loss
    expect: dict[str, Any] = {"loss": loss}
    if per_sample:
        expect["per_sample"] = to_plain(np.asarray(result.per_sample, dtype=np.float64))
    if grad:
        expect["grad"] = {k: to_plain(np.asarray(g, dtype=np.float64)) for k, g in result.grad.items()}
    return expect


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive (Windows)
        return path.as_posix()
