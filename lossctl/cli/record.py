"""``lossctl record LOSS ... --to SUITE.yaml``: append a loss call to a check suite as a pinned case."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from ..core.call import array_keys
from ..errors import InputError, UsageError
from .help import examples
from .options import Opt
from .loss import read_call
from .typer_commands import loss_group


def register(app: typer.Typer) -> None:
    app.add_typer(loss_group(
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
        epilog=examples("lossctl record ce --logits logits.npy --target labels.npy --to suite.yaml",
                        "lossctl record ce --logits '[[2,0]]' --target '[0]' --per-sample --to suite.yaml --name tiny"),
        short_help="Append a loss call to a check suite as a pinned case.",
    ), name="record")


def _record_body(spec, opts: dict[str, Any]) -> int:
    from ..api import compute
    from ..io.writers import check_target, locked
    from .loss import render_result

    opts = dict(opts)
    to_text = opts.pop("to")
    name = opts.pop("name")
    if not to_text:
        raise UsageError(f"record {spec.name}: missing --to SUITE.yaml (the suite to add the case to)")
    to = Path(to_text)
    from .loss import output_format

    fmt = output_format(opts)
    if name is not None and not name.strip():
        raise UsageError("--name: empty")

    call, reader = read_call(spec, opts)
    what = f"--to {to_text}"
    check_target(to_text, what=what, inputs=reader.paths, make_dirs=True)

    if spec.command_keys is not None:  # lm, linear-ce: token batches, computed as their commands do
        from ..tokens import suite_result

        result = suite_result(call, grad=opts["grad"], origins=reader.origins)
    else:
        result = compute(call, grad=opts["grad"], explain=opts["explain"], rows=opts["rows"], origins=reader.origins)

    if not to.parent.exists() and str(to.parent):
        try:
            to.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"{what}: cannot create {to.parent}: {e.strerror or e}") from None
    with locked(to, what=what) as target:  # read, add and write with no other writer in between
        name = _append(spec, opts, call, reader, result, to, target, name, what)

    render_result(fmt, result, None, per_sample=opts["per_sample"], grad=opts["grad"],
                  explain=opts.get("explain", False) and spec.command_keys is None, rows=opts["rows"])
    sys.stdout.flush()
    sys.stderr.write(f"recorded case '{name}' in {to} (run: lossctl check {to})\n")
    return 0


def _append(spec, opts: dict[str, Any], call: dict[str, Any], reader, result, to: Path, target: Path,
            name: str | None, what: str) -> str:
    """Add the case to the suite file ``target`` (``to`` as given); returns the case's name."""
    import numpy as np

    from ..io.sources import parse_source
    from ..io.writers import check_target, write_text
    from ..suite import compose, parse_suite
    from ..suite.rewrite import append_case, to_plain
    from .loss import not_computed
    from .options import spec_options

    array_names = set(array_keys(spec))
    text = None
    names: set[str] = set()
    count = 0
    bom = False
    if target.exists():
        try:
            raw = target.read_bytes()
            bom = raw.startswith(b"\xef\xbb\xbf")
            text = raw.decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{what}: cannot read: {getattr(e, 'strerror', None) or e}") from None
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
    # The computation's keys, and the tolerances (the expected values are written below).
    skip = {opt.name for opt in spec_options(spec) if not_computed(opt.name)} - {"rtol", "atol"}
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
    check_target(target, what=what)  # still a writable regular file
    write_text(target, ("\ufeff" if bom else "") + new_text, what=what)
    return name


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive (Windows)
        return path.as_posix()
