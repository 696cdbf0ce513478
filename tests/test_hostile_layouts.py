"""Every number next to the sample it belongs to: each tabular view (``--format csv``, the
per-sample table, ``-o FILE.csv`` in memory and streamed) against the JSON document, for
N-d layouts of every registered loss (the torch fixture generator's cases, the ones with the
most dimensions, plus class dimensions in the middle and last).

Which gradient entries belong to a sample is found without lossctl's layout code: nudging one
entry of the prediction changes the per-sample value of exactly the sample it belongs to.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

import lossctl
from torch_reference import fixture_generator
from lossctl.io.outstream import OutputStream, write_output
from lossctl.io.per_sample_csv import write_csv
from lossctl.render.text import document

TESTS = Path(__file__).resolve().parent




def _pred_key(case: dict) -> str | None:
    spec = lossctl.registry().get(case["loss"])
    return next((k for k in spec.prediction_kinds if case.get(k) is not None), None)


def _cases() -> list[tuple[str, dict]]:
    gen = fixture_generator()
    out = []
    for spec in lossctl.registry().specs:
        if "torch" not in spec.convention_names or spec.command_keys is not None:
            continue
        try:
            cases = gen.random_cases(spec.name, 7, full=True)
        except Exception:  # a loss without a generator table: its hand-made cases below
            continue
        cases = [c for c in cases if _pred_key(c) is not None]
        cases.sort(key=lambda c: -np.ndim(c[_pred_key(c)]))
        for c in cases[:2]:
            c = {k: v for k, v in c.items() if k not in ("name", "_md")}
            c["reduction"] = "none" if "none" in spec.reductions else c.get("reduction", "mean")
            out.append((f"{spec.name}-{np.ndim(c[_pred_key(c)])}d", c))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 2, 2))
    out += [
        ("ce-class-dim-1", {"loss": "ce", "logits": x.tolist(), "target": rng.integers(0, 3, (2, 2, 2)).tolist()}),
        ("ce-issue", {"loss": "ce", "logits": [[[1, 2], [3, 4]], [[0, 1], [2, 2]]], "target": [[0, 1], [1, 0]]}),
        ("ce-dim-2", {"loss": "ce", "logits": x.tolist(), "target": rng.integers(0, 2, (2, 3, 2)).tolist(), "dim": 2}),
        ("ce-dim-last", {"loss": "ce", "logits": x.tolist(), "target": rng.integers(0, 2, (2, 3, 2)).tolist(), "dim": -1}),
        ("ce-probs-target", {"loss": "ce", "logits": x.tolist(),
                             "target": (np.exp(x) / np.exp(x).sum(1, keepdims=True)).tolist()}),
        ("nll-3d", {"loss": "nll", "log_probs": (x - np.log(np.exp(x).sum(1, keepdims=True))).tolist(),
                    "target": rng.integers(0, 3, (2, 2, 2)).tolist()}),
        ("bce-4d", {"loss": "bce", "logits": x.tolist(), "target": rng.integers(0, 2, x.shape).astype(float).tolist()}),
        ("mse-4d", {"loss": "mse", "pred": x.tolist(), "target": rng.normal(size=x.shape).tolist()}),
    ]
    for _, c in out[-8:]:
        c.setdefault("reduction", "none")
    return out


CASES = _cases()


def _nudged_owner(case: dict, key: str, values: np.ndarray) -> dict[int, set[int]]:
    """flat position of the prediction -> the samples (flat) whose value moves when it is nudged."""
    x = np.asarray(case[key], dtype=np.float64)
    owners = {}
    for p in range(x.size):
        moved: set[int] = set()
        for sign in (1, -1):
            y = x.copy().reshape(-1)
            y[p] += sign * 1e-4 * max(1.0, abs(y[p]))
            r = lossctl.compute({**case, key: y.reshape(x.shape).tolist(), "reduction": "none"})
            moved |= set(np.flatnonzero(np.asarray(r.per_sample).reshape(-1) != values))
        owners[p] = moved
    return owners


def _rows_from_json(doc: dict, key: str) -> np.ndarray:
    values = np.asarray(doc["per_sample"], dtype=np.float64)
    g = np.asarray(doc["grad"][key], dtype=np.float64)
    return values.reshape(-1), g


def _csv_rows(text: str) -> tuple[list[str], np.ndarray]:
    lines = text.strip().splitlines()
    header = lines[0].split(",")
    return header, np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]])


@pytest.mark.parametrize("name,case", CASES, ids=[n for n, _ in CASES])
def test_each_tabular_view_puts_each_gradient_beside_its_sample(name, case, tmp_path):
    key = _pred_key(case)
    result = lossctl.compute(case, grad=True)
    doc = json.loads(json.dumps(document(result, per_sample=True, grad=True)))
    values, g = _rows_from_json(doc, key)
    owners = _nudged_owner(case, key, values)
    if not any(owners.values()):  # a flat part of the loss (zero-one): no entry moves any sample
        assert not np.any(g), f"{case['loss']}: a nonzero gradient where no entry moves the loss"
        return
    if any(len(s) > 1 for s in owners.values()):
        pytest.skip(f"{case['loss']}: an entry moves several samples (not separable); no row of its own")
    # the gradient entries that move sample k, in the order of the prediction's memory layout
    # (an entry in a flat part of the loss, as nll's other classes, moves nothing: the row may hold more)
    expected = {k: [g.reshape(-1)[p] for p in sorted(p for p, s in owners.items() if s == {k})] for k in range(values.size)}
    assert any(expected.values()), "some entry moves some sample"

    views = {}
    buf = io.StringIO()
    write_csv(buf, result, per_sample=True, grad=True)
    views["--format csv"] = buf.getvalue()
    write_output(tmp_path / "g.csv", result, grad=True)
    views["-o g.csv"] = (tmp_path / "g.csv").read_text()
    for view, text in views.items():
        header, rows = _csv_rows(text)
        cols = [i for i, h in enumerate(header) if h.startswith(f"grad_{key}")]
        assert cols, f"{view}: no gradient columns for {key}: {header}"
        np.testing.assert_array_equal(rows[:, 1], values, err_msg=view)
        for k in range(values.size):
            assert _in_order(expected[k], list(rows[k, cols]), lambda a, b: a == b), f"{view}: sample {k}: {rows[k]}"
    _table_view(result, key, values, expected)


def _table_view(result, key, values, expected) -> None:
    from rich.console import Console

    from lossctl.render import table

    out = io.StringIO()
    Console(file=out, width=1000, color_system=None).print(table.per_sample(result, grad=True, rows=values.size))
    lines = out.getvalue().splitlines()
    header = next(ln for ln in lines if ln.startswith("┃")).strip("┃ ").split("┃")
    body = [ln.strip("│ ").split("│") for ln in lines if ln.startswith("│")]
    cols = [i for i, h in enumerate(header) if h.strip().startswith(f"grad_{key}")]
    for k, cells in enumerate(body):
        assert int(cells[0]) == k
        np.testing.assert_allclose(float(cells[1]), values[k], rtol=1e-6, atol=0)
        shown = [float(cells[c]) for c in cols]
        assert _in_order(expected[k], shown, lambda a, b: abs(a - b) <= 1e-6 * abs(b)), f"table: sample {k}: {cells}"


def _in_order(wanted: list, row: list, same) -> bool:
    """Whether ``wanted`` appears in ``row`` in order (a subsequence)."""
    i = 0
    for v in row:
        if i < len(wanted) and same(v, wanted[i]):
            i += 1
    return i == len(wanted)


@pytest.mark.parametrize("name,case", [c for c in CASES if c[0].startswith(("ce-", "nll-", "bce-", "mse-"))],
                         ids=[n for n, _ in CASES if n.startswith(("ce-", "nll-", "bce-", "mse-"))])
def test_a_streamed_csv_output_puts_each_gradient_beside_its_sample(name, case, tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", "1")
    key = _pred_key(case)
    case = {k: np.asarray(v) if isinstance(v, list) else v for k, v in case.items()}  # arrays stream, lists do not
    memory = lossctl.compute(case, grad=True)
    sink = OutputStream(tmp_path / "s.csv", grad=True)
    streamed = lossctl.compute(case, grad=True, stream=True, block_rows=1, sink=sink, keep_arrays=False)
    assert sink.used or name.startswith("ce-dim"), "the call streamed"  # (--dim other than 1 is in memory)
    sink.commit(streamed)
    write_output(tmp_path / "m.csv", memory, grad=True)
    _, a = _csv_rows((tmp_path / "s.csv").read_text())
    _, b = _csv_rows((tmp_path / "m.csv").read_text())
    np.testing.assert_allclose(a, b, rtol=4 * np.finfo(float).eps, atol=0)


def test_the_issue_example_on_the_command_line(run_cli):
    r = run_cli(["ce", "--logits", "[[[1,2],[3,4]],[[0,1],[2,2]]]", "--target", "[[0,1],[1,0]]", "--grad", "--per-sample",
                 "--format", "csv"])
    header, rows = _csv_rows(r.stdout)
    assert header == ["sample", "loss", "grad_logits_0", "grad_logits_1"]
    # sample (0, 0): logits (1, 3), target 0: gradient (p0 - 1, p1) / 4 samples
    p = np.exp([1.0, 3.0]) / np.exp([1.0, 3.0]).sum()
    np.testing.assert_allclose(rows[0, 2:], [(p[0] - 1) / 4, p[1] / 4], rtol=1e-15)
