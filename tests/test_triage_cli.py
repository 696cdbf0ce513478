"""--top, --hist, --plot and the why-not-finite lines, through the command line, in every format."""

from __future__ import annotations

import csv
import io
import json
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import lossctl


@pytest.fixture
def batch(tmp_path):
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((40, 4))
    target = rng.integers(0, 4, size=40)
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "target.npy", target)
    per = lossctl.compute(loss="ce", logits=logits, target=target, reduction="none", grad=False).loss
    return tmp_path / "logits.npy", tmp_path / "target.npy", logits, target, per


def _expected_top(per, logits, target, k):
    order = np.argsort(-per, kind="stable")[:k]
    return [(int(i), per[i], int(target[i]), int(np.argmax(logits[i]))) for i in order]


def test_top_json(run_cli, batch):
    pl, pt, logits, target, per = batch
    r = run_cli(["ce", "--logits", pl, "--target", pt, "--top", "5", "--json"])
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    got = [(row["index"][0], row["loss"], row["target"], row["predicted_class"]) for row in doc["top"]]
    assert got == _expected_top(per, logits, target, 5)
    assert [row["rank"] for row in doc["top"]] == [1, 2, 3, 4, 5]
    assert doc["loss"] == lossctl.compute(loss="ce", logits=logits, target=target, grad=False).loss


def test_top_plain(run_cli, batch):
    pl, pt, logits, target, per = batch
    r = run_cli(["ce", "--logits", pl, "--target", pt, "--top", "3", "--format", "plain"])
    assert r.code == 0
    lines = r.stdout.splitlines()
    assert float(lines[0]) == lossctl.compute(loss="ce", logits=logits, target=target, grad=False).loss
    assert lines[1] == "# top 3 (rank index loss target predicted_class)"
    for line, (i, loss, t, p) in zip(lines[2:], _expected_top(per, logits, target, 3)):
        rank, index, value, tt, pp = line.split()
        assert (index, float(value), int(tt), int(pp)) == (f"[{i}]", loss, t, p)


def test_top_csv(run_cli, batch):
    pl, pt, logits, target, per = batch
    r = run_cli(["ce", "--logits", pl, "--target", pt, "--top", "4", "--format", "csv"])
    assert r.code == 0
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["rank", "index", "loss", "target", "predicted_class"]
    assert [(int(x[1].strip("[]")), float(x[2]), int(x[3]), int(x[4])) for x in rows[1:]] == \
        _expected_top(per, logits, target, 4)


def test_top_table(run_cli, batch):
    pl, pt, logits, target, per = batch
    r = run_cli(["ce", "--logits", pl, "--target", pt, "--top", "2", "--format", "table"])
    assert r.code == 0
    assert "2 largest ce losses" in r.stdout and "predicted class" in r.stdout
    first = _expected_top(per, logits, target, 1)[0]
    assert f"[{first[0]}]" in r.stdout


def test_top_in_the_input_s_layout_with_dim(run_cli, tmp_path):
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((2, 6, 3))  # (B, T, V)
    target = rng.integers(0, 3, size=(2, 6))
    np.save(tmp_path / "l.npy", logits)
    np.save(tmp_path / "t.npy", target)
    r = run_cli(["ce", "--logits", tmp_path / "l.npy", "--target", tmp_path / "t.npy", "--dim", "-1", "--top", "1",
                 "--json"])
    per = lossctl.compute(loss="ce", logits=logits, target=target, dim=-1, reduction="none", grad=False).loss
    b, t = np.unravel_index(int(np.argmax(per)), per.shape)
    (row,) = json.loads(r.stdout)["top"]
    assert row["index"] == [int(b), int(t)] and row["target"] == int(target[b, t])
    assert row["predicted_class"] == int(np.argmax(logits[b, t]))


def test_top_regression_predicted_value(run_cli):
    r = run_cli(["mse", "--pred", "[1.0, 4.0, -2.0]", "--target", "[1.5, 0.0, 0.0]", "--top", "2", "--json"])
    top = json.loads(r.stdout)["top"]
    assert [(t["index"], t["loss"], t["target"], t["predicted"]) for t in top] == [([1], 16.0, 0.0, 4.0),
                                                                                   ([2], 4.0, 0.0, -2.0)]


@pytest.mark.parametrize("k", ["0", "-1"])
def test_top_must_be_positive(run_cli, k):
    r = run_cli(["ce", "--logits", "[[1.0, 2.0]]", "--target", "[0]", "--top", k])
    assert r.code == 2 and "--top" in r.stderr


def test_hist_json_is_numpy_s(run_cli, batch):
    pl, pt, _, _, per = batch
    r = run_cli(["ce", "--logits", pl, "--target", pt, "--hist", "--json"])
    assert r.code == 0
    h = json.loads(r.stdout)["histogram"]
    counts, edges = np.histogram(per, bins=20)
    assert h["counts"] == list(counts) and h["edges"] == list(edges) and h["nonfinite"] == 0


def test_hist_plain_and_csv(run_cli, batch):
    pl, pt, _, _, per = batch
    counts, edges = np.histogram(per, bins=20)
    plain = run_cli(["ce", "--logits", pl, "--target", pt, "--hist", "--format", "plain"]).stdout.splitlines()
    assert plain[1].startswith("# histogram (20 bins")
    assert [int(line.split()[2]) for line in plain[2:22]] == list(counts)
    assert [float(line.split()[0]) for line in plain[2:22]] == list(edges[:-1])
    rows = list(csv.reader(io.StringIO(run_cli(["ce", "--logits", pl, "--target", pt, "--hist", "-f", "csv"]).stdout)))
    assert rows[0] == ["low", "high", "count"] and [int(r[2]) for r in rows[1:]] == list(counts)


def test_hist_table_bars_log_scaled_when_counts_span_decades(run_cli, tmp_path):
    values = np.concatenate([np.zeros(2000), np.linspace(5, 10, 5)])
    np.save(tmp_path / "p.npy", values)
    np.save(tmp_path / "t.npy", np.zeros_like(values))
    r = run_cli(["l1", "--pred", tmp_path / "p.npy", "--target", tmp_path / "t.npy", "--hist", "-f", "table"])
    assert r.code == 0 and "█" in r.stdout and "log scale" in r.stdout and "2005 samples" in r.stdout
    even = run_cli(["l1", "--pred", "[1.0, 2.0, 3.0]", "--target", "[0.0, 0.0, 0.0]", "--hist", "-f", "table"])
    assert "█" in even.stdout and "log scale" not in even.stdout


def test_csv_holds_one_table(run_cli, batch):
    pl, pt, *_ = batch
    r = run_cli(["ce", "--logits", pl, "--target", pt, "--hist", "--top", "2", "--format", "csv"])
    assert r.code == 2 and "csv" in r.stderr


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_writes_a_valid_file(run_cli, batch, tmp_path, suffix):
    pl, pt, *_ = batch
    out = tmp_path / f"h{suffix}"
    r = run_cli(["ce", "--logits", pl, "--target", pt, "--plot", out])
    assert r.code == 0, r.stderr
    data = out.read_bytes()
    if suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        assert struct.unpack(">II", data[16:24]) == (960, 540)
    else:
        root = ET.fromstring(data)
        assert root.tag.endswith("svg") and root.get("width") and root.get("height")
        text = data.decode()
        assert "ce" in text and "40 samples" in text and "logits.npy" in text  # the title


def test_plot_refuses_to_overwrite_inputs_and_other_suffixes(run_cli, batch, tmp_path):
    pl, pt, *_ = batch
    assert run_cli(["ce", "--logits", pl, "--target", pt, "--plot", tmp_path / "h.pdf"]).code == 2
    (tmp_path / "old.png").write_bytes(b"keep")
    r = run_cli(["ce", "--logits", pl, "--target", pt, "--plot", tmp_path / "old.png"])
    assert r.code != 0 and (tmp_path / "old.png").read_bytes() == b"keep"


def test_not_finite_names_samples_and_causes_on_stderr(run_cli):
    r = run_cli(["ce", "--probs", "[[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.9, 0.1, 0.0]]", "--target", "[2, 0, 2]",
                 "--format", "plain"])
    assert r.code == 0 and r.stdout.strip() == "inf"
    assert "2 of 3 per-sample values are not finite" in r.stderr
    assert "sample 0" in r.stderr and "sample 2" in r.stderr and "log(0)" in r.stderr and "class 2" in r.stderr


@pytest.mark.parametrize("fmt", ["json", "plain", "csv", "table"])
def test_not_finite_lines_in_every_format_stay_off_stdout(run_cli, fmt):
    r = run_cli(["ce", "--logits", "[[0.0, 1.0], [1.0, 2.0]]", "--target", "[-100, -100]", "--format", fmt])
    assert r.code == 0
    assert "every target is ignored" in r.stderr and "0/0" in r.stderr
    assert "ignored" not in r.stdout
    if fmt == "json":
        assert json.loads(r.stdout)["loss"] == "nan"


def test_inf_minus_inf_and_strict_keeps_its_meaning(run_cli):
    args = ["ce", "--logits", "[[Infinity, 0.0], [1.0, 2.0]]", "--target", "[1, 0]", "--format", "plain"]
    r = run_cli(args)
    assert r.code == 0 and "inf − inf" in r.stderr and "sample 0" in r.stderr
    strict = run_cli(args + ["--strict"])
    assert strict.code == 3 and "refused by --strict" in strict.stderr


def test_float32_overflow(run_cli):
    r = run_cli(["mse", "--pred", "[1.0, 3e19]", "--target", "[0.0, 0.0]", "--dtype", "float32", "-f", "plain"])
    assert r.code == 0 and "sample 1" in r.stderr and "overflow in float32" in r.stderr


def test_finite_losses_say_nothing(run_cli, batch):
    pl, pt, *_ = batch
    assert run_cli(["ce", "--logits", pl, "--target", pt, "-f", "plain"]).stderr == ""
