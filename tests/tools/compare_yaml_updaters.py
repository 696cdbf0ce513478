"""Which suite updater keeps a user's file better: lossctl's own (``lossctl.suite.rewrite``) or ruamel.yaml's round trip?

Runs both on the cases ``tests/test_suite.py`` pins for ``lossctl check --update`` (comments and
blank lines, a larger suite, a comment on the ``expect`` line, anchors with merge keys and a
shared value, CRLF line ends with a byte order mark, flow-style cases selected with ``-k``) and
counts, for each updater and each property, the cases where the property survived:

* ``values``: the file loads and every case whose value was written now passes;
* ``untouched lines``: every line of the original that the pinned update leaves alone is still there;
* ``comments``: every comment of the original is still there;
* ``flow style``: every flow mapping/sequence of the original is still written in flow style;
* ``anchors``: every anchor, alias and merge key of the original is still there;
* ``line ends`` / ``byte order mark``: as in the original;
* ``same as the pinned text``: the whole file equals what the tests pin.

ruamel.yaml gets its best settings (round-trip mode, quotes preserved, the files' indentation,
no line wrapping) and the same changes lossctl's planner decided (so it is compared on keeping
the file, not on deciding what to change); new lists are given flow style, as lossctl writes them.

    python tests/tools/compare_yaml_updaters.py        (prints a table; README's dependency notes quote it)
"""

from __future__ import annotations

import io
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

import lossctl  # noqa: E402
from test_suite import ANCHORS_SUITE, UPDATE_BEFORE  # noqa: E402
from lossctl.suite import load_suite, run_suite  # noqa: E402
from lossctl.suite.rewrite import plan_update  # noqa: E402

LOGITS = [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]
CE_LOSS = lossctl.compute({"loss": "ce", "logits": LOGITS, "target": [0, 2]}).loss
L = json.dumps(LOGITS)


def _cases() -> dict[str, tuple[bytes, list[str]]]:
    """name -> (the suite file's bytes, the -k patterns)."""
    many = "cases:\n" + "\n".join(
        f"  # case {i}\n  - name: c{i}\n    loss: ce\n    logits: {L}   # inline\n"
        f"    target: [0, 2]\n    expect: {0.5 if i % 3 == 0 else repr(CE_LOSS)}\n" for i in range(30))
    return {
        "comments, blank lines, flow case": (UPDATE_BEFORE.encode(), []),  # the round trip test_suite.py pins
        "30 cases, 10 rewritten": (many.encode(), []),
        "comment on the expect line, gradient added": (f"""\
cases:
  - name: g
    loss: ce
    logits: {L}
    target: [0, 2]
    grad: true
    expect: 0.549329  # rounded
    atol: 1.0e-6
""".encode(), []),
        "anchors, merge keys, a shared value": (ANCHORS_SUITE.encode(), []),
        "CRLF line ends and a byte order mark": ((f"\ufeffcases:\r\n  - name: a   # comment\r\n    loss: ce\r\n"
                                                  f"    logits: {L}\r\n    target: [0, 2]\r\n").encode(), []),
        "flow-style cases, one selected (-k)": (f"""\
cases:
  - {{name: one, loss: ce, logits: {L}, target: [0, 2], expect: 0.1}}
  - {{name: two, loss: ce, logits: {L}, target: [0, 2], expect: 0.2}}
""".encode(), ["two"]),
    }


def lossctl_update(path: Path, patterns: list[str]):
    suite = load_suite(path)
    plan = plan_update(suite, run_suite(suite, patterns))
    path.write_bytes((("\ufeff" if suite.bom else "") + plan.text).encode())
    return plan


def ruamel_update(path: Path, plan) -> None:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1 << 16
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(path)

    def flow(value):
        if isinstance(value, list):
            seq = CommentedSeq(flow(v) for v in value)
            seq.fa.set_flow_style()
            return seq
        return value

    by_name = {str(c.get("name")): c for c in data["cases"]}
    for change in plan.written:
        case = by_name[change.case]
        part, _, grad_of = change.what.partition(".")
        if "expect" not in case:
            case["expect"] = flow(change.new) if part == "loss" else CommentedMap()
        expect = case["expect"]
        if not isinstance(expect, dict):
            if part == "loss":
                case["expect"] = flow(change.new)
                continue
            case["expect"] = expect = CommentedMap([("loss", expect)])
        if grad_of:
            expect.setdefault("grad", CommentedMap())[grad_of] = flow(change.new)
        else:
            expect[part] = flow(change.new)
    yaml.dump(data, path)


def _comments(text: str) -> list[str]:
    return re.findall(r"#[^\n\r]*", text)


def _flow_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.lstrip().startswith("- {")]


def _line_ends(data: bytes) -> str:
    """"CRLF", "LF" or "mixed" (a file is written with one kind of line end)."""
    crlf, lf = data.count(b"\r\n"), data.count(b"\n")
    return "CRLF" if crlf == lf else "LF" if crlf == 0 else "mixed"


def _anchors(text: str) -> list[str]:
    return sorted(re.findall(r"[&*][\w-]+|<<:", text))


def properties(original: bytes, written: bytes, pinned: bytes, plan, path: Path, patterns) -> dict[str, bool]:
    before, after = original.decode("utf-8-sig"), written.decode("utf-8-sig", errors="replace")
    rewritten = {c.case for c in plan.written}
    try:
        report = run_suite(load_suite(path), patterns)
        values = all(r.status == "pass" for r in report.results if r.name in rewritten)
    except Exception:
        values = False
    # the lines the pinned update leaves alone (tests/test_suite.py asserts lossctl keeps them byte for byte)
    kept_lines = [line for line in before.splitlines() if line in pinned.decode("utf-8-sig").splitlines()]
    return {
        "values": values,
        "untouched lines": all(line in after.splitlines() for line in kept_lines),
        "comments": all(c in after for c in _comments(before)),
        "flow style": all(any(f.split(",")[0] in g for g in _flow_lines(after)) for f in _flow_lines(before)),
        "anchors": _anchors(before) == _anchors(after),
        "line ends": _line_ends(original) == _line_ends(written),
        "byte order mark": original.startswith(b"\xef\xbb\xbf") == written.startswith(b"\xef\xbb\xbf"),
        "same as the pinned text": written == pinned,
    }


def main() -> int:
    results: dict[str, dict[str, dict[str, bool]]] = {"lossctl.suite.rewrite": {}, "ruamel.yaml round trip": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (original, patterns) in _cases().items():
            path = Path(tmp) / "suite.yaml"
            (Path(tmp) / "data").mkdir(exist_ok=True)  # the data files the pinned round trip reads
            np.save(Path(tmp) / "data" / "logits.npy", np.array(LOGITS))
            path.write_bytes(original)
            plan = lossctl_update(path, patterns)
            pinned = path.read_bytes()
            results["lossctl.suite.rewrite"][name] = properties(original, pinned, pinned, plan, path, patterns)
            path.write_bytes(original)
            try:
                ruamel_update(path, plan)
                written = path.read_bytes()
            except Exception as e:  # noqa: BLE001  (a failure to round-trip counts as nothing kept)
                written = f"ruamel.yaml failed: {type(e).__name__}: {e}".encode()
                path.write_bytes(written)
            results["ruamel.yaml round trip"][name] = properties(original, written, pinned, plan, path, patterns)
    props = list(next(iter(next(iter(results.values())).values())))
    n = len(_cases())
    out = io.StringIO()
    out.write(f"| property kept (of {n} update cases) | " + " | ".join(results) + " |\n")
    out.write("| --- |" + " --- |" * len(results) + "\n")
    for p in props:
        out.write(f"| {p} | " + " | ".join(str(sum(r[c][p] for c in r)) for r in results.values()) + " |\n")
    out.write("\ncases where ruamel.yaml lost something:\n")
    for case, r in results["ruamel.yaml round trip"].items():
        lost = [p for p, ok in r.items() if not ok]
        if lost:
            out.write(f"  {case}: {', '.join(lost)}\n")
    sys.stdout.write(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
