"""``lossctl diff``: every output format, every input form, the exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(7)
    b = rng.standard_normal((5, 6))
    a = b.astype(np.float32)
    a[3, 4] += np.float32(0.01)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    return tmp_path / "a.npy", tmp_path / "b.npy", a, b


def test_json_numbers_are_numpy_s(run_cli, pair):
    pa, pb, a, b = pair
    r = run_cli(["diff", pa, pb, "--json", "--top", "3", "--rtol", "1e-6", "--atol", "1e-8"])
    assert r.code == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["passed"] is False and doc["rtol"] == 1e-6 and doc["only_in_a"] == [] and doc["only_in_b"] == []
    (d,) = doc["arrays"]
    err = np.abs(a.astype(np.float64) - b)
    assert d["shape"] == [5, 6] and d["dtype_a"] == "float32" and d["dtype_b"] == "float64"
    assert d["compared_in"] == "float64" and d["ulp_dtype"] == "float32"
    assert d["max_abs_error"] == err.max() and d["max_rel_error"] == (err / np.abs(b)).max()
    assert d["mismatched"] == int((~np.isclose(a, b, rtol=1e-6, atol=1e-8)).sum())
    assert d["mismatched_fraction"] == d["mismatched"] / 30
    assert [w["index"] for w in d["worst"]][0] == [3, 4] and len(d["worst"]) == 3
    assert d["worst"][0]["a"] == float(a[3, 4]) and d["worst"][0]["b"] == b[3, 4]
    assert sum(d["histogram"]["counts"]) + d["histogram"]["zero"] == 30
    assert len(d["histogram"]["edges"]) == len(d["histogram"]["counts"]) + 1


def test_plain_for_scripts(run_cli, pair):
    pa, pb, a, b = pair
    r = run_cli(["diff", pa, pb, "--format", "plain", "--top", "1"])
    assert r.code == 1
    lines = r.stdout.splitlines()
    assert "- shape 5x6" in lines
    assert "- dtype float32 float64 compared_in float64" in lines
    fields = dict((ln.split(" ", 2)[1], ln.split(" ", 2)[2]) for ln in lines if ln.startswith("- "))
    assert float(fields["max_abs_error"]) == np.abs(a.astype(np.float64) - b).max()
    assert fields["worst"].startswith("[3,4] ") and fields["verdict"] == "FAIL"
    assert lines[-1].startswith("FAIL: 1 array compared, 1 outside tolerance")


def test_table_on_a_terminal_format(run_cli, pair):
    pa, pb, _, _ = pair
    r = run_cli(["diff", pa, pb, "--format", "table"])
    assert r.code == 1
    for text in ("compared in float64", "max ulps (float32)", "outside tolerance", "worst positions", "[3, 4]",
                 "by decade", "█"):
        assert text in r.stdout, text


def test_within_tolerance_exits_0(run_cli, pair):
    pa, pb, _, _ = pair
    r = run_cli(["diff", pb, pb, "--format", "plain"])
    assert r.code == 0 and r.stdout.splitlines()[-1].startswith("ok: ")
    loose = run_cli(["diff", pa, pb, "--atol", "0.1", "--json"])
    assert loose.code == 0 and json.loads(loose.stdout)["passed"] is True


def test_shape_mismatch_exits_3_naming_both_shapes(run_cli, tmp_path):
    r = run_cli(["diff", "[[1, 2, 3], [4, 5, 6]]", "[[1, 2], [3, 4], [5, 6]]", "--json"])
    assert r.code == 3
    assert "(2, 3)" in r.stderr and "(3, 2)" in r.stderr and "shapes differ" in r.stderr
    assert json.loads(r.stdout)["arrays"][0]["shape_a"] == [2, 3]


@pytest.mark.parametrize("fmt", ["json", "plain", "table"])
def test_keys_compared_and_one_sided_keys_listed(run_cli, tmp_path, fmt):
    np.savez(tmp_path / "a.npz", w=np.ones((2, 2)), b=np.zeros(3), extra=np.ones(1))
    np.savez(tmp_path / "b.npz", b=np.zeros(3), w=np.ones((2, 2)) * 1.5, new=np.ones(1))
    r = run_cli(["diff", tmp_path / "a.npz", tmp_path / "b.npz", "--format", fmt])
    assert r.code == 3
    assert "has no 'extra'" in r.stderr and "has no 'new'" in r.stderr
    if fmt == "json":
        doc = json.loads(r.stdout)
        assert [d["name"] for d in doc["arrays"]] == ["w", "b"]
        assert [d["passed"] for d in doc["arrays"]] == [False, True]
        assert doc["only_in_a"] == ["extra"] and doc["only_in_b"] == ["new"]
    else:
        assert "extra" in r.stdout and "new" in r.stdout and "w" in r.stdout
    same = run_cli(["diff", tmp_path / "a.npz", tmp_path / "a.npz", "--format", fmt])
    assert same.code == 0


def test_one_key_against_a_file_of_several(run_cli, tmp_path):
    np.savez(tmp_path / "a.npz", w=np.ones(2), b=np.zeros(3))
    (tmp_path / "ref.json").write_text(json.dumps({"w": [1.0, 1.0], "b": [0, 0, 1]}))
    assert run_cli(["diff", f"{tmp_path / 'a.npz'}:w", tmp_path / "ref.json"]).code == 0
    r = run_cli(["diff", f"{tmp_path / 'a.npz'}:b", tmp_path / "ref.json", "--json"])
    assert r.code == 1 and json.loads(r.stdout)["arrays"][0]["mismatched"] == 1
    (tmp_path / "other.yaml").write_text("v: [1, 2]\nu: [3]\n")
    missing = run_cli(["diff", f"{tmp_path / 'a.npz'}:w", tmp_path / "other.yaml"])
    assert missing.code == 3 and "has no 'w'" in missing.stderr
    bad_key = run_cli(["diff", f"{tmp_path / 'a.npz'}:nope", tmp_path / "ref.json"])
    assert bad_key.code == 3 and "nope" in bad_key.stderr


@pytest.mark.parametrize("form", ["csv", "txt", "yaml", "stdin", "literal"])
def test_every_input_form(run_cli, tmp_path, form):
    values = [[1.0, 2.0], [3.0, 4.5]]
    ref = tmp_path / "ref.npy"
    np.save(ref, np.array([[1.0, 2.0], [3.0, 4.0]]))
    stdin = None
    if form == "csv":
        (tmp_path / "x.csv").write_text("1,2\n3,4.5\n")
        arg = tmp_path / "x.csv"
    elif form == "txt":
        (tmp_path / "x.txt").write_text("1 2\n3 4.5\n")
        arg = tmp_path / "x.txt"
    elif form == "yaml":
        (tmp_path / "x.yaml").write_text("x: [[1, 2], [3, 4.5]]\n")
        arg = f"{tmp_path / 'x.yaml'}:x"
    elif form == "stdin":
        arg, stdin = "-", json.dumps(values)
    else:
        arg = json.dumps(values)
    r = run_cli(["diff", arg, ref, "--json"], stdin=stdin)
    assert r.code == 1, r.stderr
    (d,) = json.loads(r.stdout)["arrays"]
    assert d["mismatched"] == 1 and d["max_abs_error"] == 0.5 and d["worst"][0]["index"] == [1, 1]


def test_nan_and_equal_nan(run_cli):
    a, b = '[1.0, NaN, NaN]', '[1.0, NaN, 2.0]'
    strict = run_cli(["diff", a, b, "--json"])
    d = json.loads(strict.stdout)["arrays"][0]
    assert strict.code == 1 and d["mismatched"] == 2 and d["nan"] == {"a_only": 1, "b_only": 0, "both": 1}
    lenient = run_cli(["diff", a, b, "--json", "--equal-nan"])
    assert lenient.code == 1 and json.loads(lenient.stdout)["arrays"][0]["mismatched"] == 1


@pytest.mark.parametrize("argv", [["--top", "0"], ["--top", "-2"], ["--rtol", "-1"], ["--format", "csv"]])
def test_usage_errors_exit_2(run_cli, argv):
    r = run_cli(["diff", "[1]", "[1]", *argv])
    assert r.code == 2 and r.stderr.startswith("error: ")


def test_large_npy_streams(run_cli, tmp_path):
    n = 1_500_000
    b = np.lib.format.open_memmap(tmp_path / "b.npy", mode="w+", dtype=np.float32, shape=(n,))
    b[:] = 1.0
    a = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.float32, shape=(n,))
    a[:] = 1.0
    a[n - 3] = np.nextafter(np.float32(1), np.float32(0))
    a.flush(), b.flush()
    del a, b
    r = run_cli(["diff", tmp_path / "a.npy", tmp_path / "b.npy", "--json", "--rtol", "0", "--atol", "0"])
    d = json.loads(r.stdout)["arrays"][0]
    assert r.code == 1 and d["max_ulp"] == 1 and d["worst"][0]["index"] == [n - 3] and d["mismatched"] == 1


def test_bfloat16_safetensors_against_its_float32_reference(run_cli, tmp_path):
    import ml_dtypes
    from safetensors.numpy import save_file

    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    save_file({"w": x.astype(ml_dtypes.bfloat16)}, str(tmp_path / "m.safetensors"))
    np.save(tmp_path / "x.npy", x)
    r = run_cli(["diff", f"{tmp_path / 'm.safetensors'}:w", tmp_path / "x.npy", "--json"])
    (d,) = json.loads(r.stdout)["arrays"]
    assert r.code == 1 and d["dtype_a"] == "bfloat16" and d["ulp_dtype"] == "bfloat16" and d["max_ulp"] == 0
    widened = x.astype(ml_dtypes.bfloat16).astype(np.float64)
    assert d["max_abs_error"] == np.max(np.abs(widened - x))
    assert d["mismatched"] == int((~np.isclose(widened.astype(np.float32), x, rtol=1e-7, atol=1e-9)).sum())
