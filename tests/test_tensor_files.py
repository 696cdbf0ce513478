"""Tensor files: .safetensors, PyTorch zip (.pt/.pth/.bin), parquet/arrow/feather, HDF5.

Values are compared bit for bit (NaN with NaN) with what the frameworks give:
the committed fixtures (tests/tools/make_tensor_fixtures.py: safetensors' own
writer and ``torch.save``, expected values from torch) always, and torch,
safetensors and ml_dtypes live when installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lossctl.io.encoded import EncodedArray, decode, widen
from lossctl.io.readers import read_array
from lossctl.io.sources import parse_source

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tensors"
EXPECTED = dict(np.load(FIXTURES / "expected.npz"))
LOGITS = [[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]
TARGET = [0, 2]
BASE_LOSS = 0.5493288448141933  # ce(LOGITS, TARGET), as torch gives it


def read(text: str, **kw):
    return read_array(parse_source(text), f"--x {text}", **kw)


def same(a, b) -> bool:
    """Equal values, dtype family aside; NaN equals NaN; -0.0 differs from 0.0."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        with np.errstate(invalid="ignore"):  # signalling NaNs
            a, b = a.astype(np.float64), b.astype(np.float64)
        return bool(np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b)))
    return bool(np.array_equal(a, b))


# --------------------------------------------------------------------------- exact decoding


def test_bfloat16_decodes_every_bit_pattern_exactly():
    import ml_dtypes
    bits = np.arange(1 << 16, dtype=np.uint16)
    ref = bits.view(ml_dtypes.bfloat16)
    got32 = decode(bits, "bfloat16")
    assert got32.dtype == np.float32
    nan = np.isnan(got32)
    assert np.array_equal(got32.view(np.uint32)[~nan], ref.astype(np.float32).view(np.uint32)[~nan])
    assert np.array_equal(nan, np.isnan(ref.astype(np.float32)))
    with np.errstate(invalid="ignore"):  # ml_dtypes widening signalling NaNs
        ref64 = ref.astype(np.float64)
    assert same(decode(bits, "bfloat16", np.float64), ref64)


@pytest.mark.parametrize("encoding", ["float8_e4m3fn", "float8_e5m2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float8_decodes_every_bit_pattern_exactly(encoding, dtype):
    import ml_dtypes
    bits = np.arange(256, dtype=np.uint8)
    assert same(decode(bits, encoding, dtype), bits.view(getattr(ml_dtypes, encoding)).astype(dtype))


def test_decoding_matches_torch_on_every_bit_pattern():
    import torch
    for encoding, tdtype, bits in [("bfloat16", torch.bfloat16, np.arange(1 << 16, dtype=np.uint16).view(np.int16)),
                                   ("float8_e4m3fn", torch.float8_e4m3fn, np.arange(256, dtype=np.uint8)),
                                   ("float8_e5m2", torch.float8_e5m2, np.arange(256, dtype=np.uint8))]:
        t = torch.from_numpy(bits.copy()).view(tdtype)
        assert same(decode(bits.view(np.uint16 if bits.itemsize == 2 else np.uint8), encoding, np.float64),
                    t.double().numpy()), encoding


def test_widen_into_a_block_buffer():
    bits = np.random.default_rng(0).integers(0, 1 << 16, size=(64, 33), dtype=np.uint16)
    a = EncodedArray(bits, "bfloat16")
    whole = a.widen(np.float64)
    out = np.empty((10, 33))
    assert widen(a[20:30], out=out) is out
    assert same(out, whole[20:30])
    out32 = np.empty((10, 33), dtype=np.float32)
    widen(a[20:30], out=out32)
    assert same(out32, whole[20:30])
    assert same(np.asarray(a[5:7, ::3]), whole[5:7, ::3])
    assert same(widen(np.float16([1.5, -2.0])), [1.5, -2.0])
    assert a.shape == (64, 33) and a.dtype == np.float32 and a.nbytes == bits.nbytes and len(a) == 64


# --------------------------------------------------------------------------- .safetensors


SAFETENSORS_NAMES = ["f64", "f32", "f16", "bf16", "f8_e4m3", "f8_e5m2", "i8", "i16", "i32", "i64",
                     "u8", "u16", "u32", "u64", "bool", "logits", "scalar", "empty"]


@pytest.mark.parametrize("name", SAFETENSORS_NAMES)
def test_safetensors_fixture_matches_torch_values(name):
    got = read(f"{FIXTURES / 'dtypes.safetensors'}:{name}")
    assert isinstance(got, np.ndarray)
    assert same(got, EXPECTED[name])
    if name.startswith(("i", "u")):
        assert got.dtype == EXPECTED[name].dtype
    if name == "bool":
        assert got.dtype == np.bool_


def test_safetensors_is_memory_mapped_and_lazy_keeps_bits(tmp_path):
    f32 = read(f"{FIXTURES / 'dtypes.safetensors'}:f32")
    assert isinstance(f32, np.memmap) and not f32.flags.writeable
    lazy = read(f"{FIXTURES / 'dtypes.safetensors'}:logits", lazy=True)
    assert isinstance(lazy, EncodedArray) and isinstance(lazy.bits, np.memmap)
    assert lazy.shape == (2, 3, 5)
    assert same(lazy.widen(np.float64), EXPECTED["logits"])
    assert same(lazy[1].widen(), EXPECTED["logits"][1])
    assert isinstance(read(f"{FIXTURES / 'dtypes.safetensors'}:f16", lazy=True), np.memmap)


@pytest.mark.parametrize("tdtype", ["float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2",
                                    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"])
def test_safetensors_live_against_torch(tmp_path, tdtype):
    import torch
    from safetensors.torch import save_file

    dt = getattr(torch, tdtype)
    rng = np.random.default_rng(7)
    if dt.is_floating_point:
        t = torch.from_numpy(rng.standard_normal((3, 7, 5)) * 50).to(dt)
        t.view(-1)[:3] = torch.tensor([float("nan"), 0.0, -0.0]).to(dt)
    elif dt == torch.bool:
        t = torch.from_numpy(rng.integers(0, 2, (3, 7, 5)).astype(bool))
    else:
        info = np.iinfo(tdtype)
        a = rng.integers(0, 100, (3, 7, 5)).astype(tdtype)
        a.flat[0], a.flat[1] = info.min, info.max
        t = torch.from_numpy(a)
    save_file({"x": t, "other": torch.ones(2)}, str(tmp_path / "t.safetensors"))
    got = read(f"{tmp_path / 't.safetensors'}:x")
    ref = t.double().numpy() if dt.is_floating_point else t.numpy()
    assert same(got, ref)


def test_safetensors_one_tensor_needs_no_key_and_cli_computes(tmp_path, run_cli):
    from lossctl.io import safetensors

    with open(tmp_path / "l.safetensors", "wb") as f:
        safetensors.write(f, {"logits": np.array(LOGITS)})
    r = run_cli(["ce", "--logits", tmp_path / "l.safetensors", "--target", json.dumps(TARGET)])
    assert r.code == 0, r.stderr
    assert float(r.stdout) == pytest.approx(BASE_LOSS, rel=1e-15)


def test_safetensors_several_tensors_need_a_key(run_cli, monkeypatch):
    monkeypatch.chdir(FIXTURES)  # a short origin: the CLI shortens long ones
    r = run_cli(["ce", "--logits", "dtypes.safetensors", "--target", "[0]"])
    assert r.code == 3
    assert "dtypes.safetensors" in r.stderr and "name one as FILE.safetensors:NAME" in r.stderr and "bf16" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_on_bfloat16_logits_matches_torch_float64(tmp_path, run_cli):
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(3)
    logits = (torch.randn(6, 11, generator=g) * 3).to(torch.bfloat16)
    target = torch.randint(0, 11, (6,), generator=g)
    save_file({"logits": logits, "target": target}, str(tmp_path / "b.safetensors"))
    r = run_cli(["ce", "--logits", f"{tmp_path / 'b.safetensors'}:logits",
                 "--target", f"{tmp_path / 'b.safetensors'}:target"])
    assert r.code == 0, r.stderr
    ref = torch.nn.functional.cross_entropy(logits.double(), target).item()
    assert float(r.stdout) == pytest.approx(ref, rel=1e-14)


def test_safetensors_writer_is_read_by_the_reference(tmp_path):
    import safetensors.numpy as st
    from lossctl.io import safetensors

    arrays = {"per_sample": np.linspace(0, 1, 7), "grad_logits": np.arange(12, dtype=np.float32).reshape(3, 4),
              "mask": np.array([True, False]), "i": np.arange(3, dtype=np.int16), "s": np.float64(2.5)}
    with open(tmp_path / "w.safetensors", "wb") as f:
        safetensors.write(f, arrays, metadata={"loss": "ce"})
    back = st.load_file(str(tmp_path / "w.safetensors"))
    assert set(back) == set(arrays)
    for k, v in arrays.items():
        assert back[k].dtype == np.asarray(v).dtype and same(back[k], v), k
    for k, v in arrays.items():
        assert same(read(f"{tmp_path / 'w.safetensors'}:{k}"), v)


# --------------------------------------------------------------------------- PyTorch zip (.pt / .pth / .bin)


PT_NAMES = SAFETENSORS_NAMES + ["strided", "transposed"]


@pytest.mark.parametrize("name", PT_NAMES)
def test_pt_fixture_matches_torch_values(name):
    got = read(f"{FIXTURES / 'dtypes.pt'}:{name}")
    assert isinstance(got, np.ndarray)
    assert same(got, EXPECTED[name])
    if name.startswith(("i", "u")):
        assert got.dtype == EXPECTED[name].dtype


def test_pt_nested_keys_and_lists():
    assert same(read(f"{FIXTURES / 'dtypes.pt'}:nested.model.head"), EXPECTED["logits"])
    assert same(read(f"{FIXTURES / 'dtypes.pt'}:nested.list.0"), EXPECTED["f32"])
    assert same(read(f"{FIXTURES / 'dtypes.pt'}:nested.list.1"), EXPECTED["i64"])


def test_pt_views_are_memory_mapped_strided_views():
    strided = read(f"{FIXTURES / 'dtypes.pt'}:strided")
    assert not strided.flags.writeable and not strided.flags.c_contiguous
    root = strided
    while isinstance(root.base, np.ndarray):
        root = root.base
    assert isinstance(root, np.memmap)
    lazy = read(f"{FIXTURES / 'dtypes.pt'}:logits", lazy=True)
    assert isinstance(lazy, EncodedArray) and same(lazy.widen(np.float64), EXPECTED["logits"])


def test_pt_live_state_dict_with_dotted_keys(tmp_path):
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3), torch.nn.Linear(3, 2)).to(torch.bfloat16)
    sd = model.state_dict()
    torch.save({"model": sd, "epoch": 7, "step": 1.5, "names": ["a", "b"]}, tmp_path / "ck.pth")
    for k, v in sd.items():
        assert same(read(f"{tmp_path / 'ck.pth'}:model.{k}"), v.double().numpy()), k
    assert read(f"{tmp_path / 'ck.pth'}:epoch") == 7
    torch.save(sd, tmp_path / "sd.bin")
    assert same(read(f"{tmp_path / 'sd.bin'}:2.weight"), sd["2.weight"].double().numpy())


@pytest.mark.parametrize("tdtype", ["float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2",
                                    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"])
def test_pt_live_against_torch(tmp_path, tdtype):
    import torch
    dt = getattr(torch, tdtype)
    rng = np.random.default_rng(11)
    base = torch.from_numpy(rng.standard_normal((6, 9, 4)) * 30)
    if dt == torch.bool:
        base = base > 0
    elif not dt.is_floating_point:
        base = base.abs().round()
    t = base.to(dt)
    views = {"whole": t, "slice": t[1:5, ::2], "perm": t.permute(2, 0, 1), "row": t[3], "param": torch.nn.Parameter(
        t.double(), requires_grad=False).to(dt) if dt.is_floating_point else t[0]}
    torch.save(views, tmp_path / "v.pt")
    for k, v in views.items():
        ref = v.double().numpy() if dt.is_floating_point else v.numpy()
        assert same(read(f"{tmp_path / 'v.pt'}:{k}"), ref), k


def test_pt_single_tensor_and_cli_on_bfloat16(tmp_path, run_cli):
    import torch
    g = torch.Generator().manual_seed(5)
    logits = (torch.randn(7, 13, generator=g) * 3).to(torch.bfloat16)
    target = torch.randint(0, 13, (7,), generator=g)
    torch.save(logits, tmp_path / "l.pt")
    torch.save({"labels": target}, tmp_path / "y.pt")
    r = run_cli(["ce", "--logits", tmp_path / "l.pt", "--target", tmp_path / "y.pt"])
    assert r.code == 0, r.stderr
    ref = torch.nn.functional.cross_entropy(logits.double(), target).item()
    assert float(r.stdout) == pytest.approx(ref, rel=1e-14)


def test_pt_several_tensors_need_a_key(run_cli, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    r = run_cli(["ce", "--logits", "dtypes.pt", "--target", "[0]"])
    assert r.code == 3
    assert "dtypes.pt" in r.stderr and "name one as FILE.pt:KEY" in r.stderr and "23 tensors (f64, f32" in r.stderr


# --------------------------------------------------------------------------- parquet / arrow / feather


def _arrow_table():
    import pyarrow as pa
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((5, 4))
    return pa, pa.table({
        "label": pa.array([0, 3, 1, 2, 3], type=pa.int64()),
        "weight": pa.array(rng.random(5), type=pa.float64()),
        "half": pa.array(rng.random(5).astype(np.float16), type=pa.float16()),
        "flag": pa.array([True, False, True, True, False]),
        "logits": pa.array(list(logits), type=pa.list_(pa.float64())),
        "fixed": pa.array(list(logits.astype(np.float32)), type=pa.list_(pa.float32(), 4)),
        "large": pa.array(list(logits), type=pa.large_list(pa.float64())),
        "cube": pa.array([[[1.0, 2.0], [3.0, 4.0]]] * 5, type=pa.list_(pa.list_(pa.float64()))),
    })


def _write_arrow(pa, table, path: Path) -> None:
    suffix = path.suffix
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path, row_group_size=2)  # several row groups: chunked columns
    elif suffix == ".feather":
        import pyarrow.feather as pf

        pf.write_feather(table, path, chunksize=2)
    elif path.stem.endswith("stream"):
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table, max_chunksize=2)
    else:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table, max_chunksize=2)


@pytest.mark.parametrize("name", ["t.parquet", "t.feather", "t.arrow", "t-stream.arrow"])
def test_arrow_formats_read_every_column_as_pyarrow_gives_it(tmp_path, name):
    pa, table = _arrow_table()
    _write_arrow(pa, table, tmp_path / name)
    for column in table.column_names:
        got = read(f"{tmp_path / name}:{column}")
        ref = np.array(table.column(column).to_pylist())
        assert same(got, ref), column
        assert got.shape == ref.shape
    assert read(f"{tmp_path / name}:half").dtype == np.float16
    assert read(f"{tmp_path / name}:fixed").dtype == np.float32
    assert read(f"{tmp_path / name}:cube").shape == (5, 2, 2)


def test_arrow_table_without_key(tmp_path):
    pa, table = _arrow_table()
    _write_arrow(pa, table.select(["label", "weight"]), tmp_path / "two.parquet")
    ref = np.stack([table.column("label").to_numpy(), table.column("weight").to_numpy()], axis=1)
    assert same(read(str(tmp_path / "two.parquet")), ref)
    _write_arrow(pa, table.select(["logits"]), tmp_path / "one.feather")
    assert same(read(str(tmp_path / "one.feather")), np.array(table.column("logits").to_pylist()))


def test_cli_on_parquet_logits_and_labels(tmp_path, run_cli):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"logits": pa.array(LOGITS, type=pa.list_(pa.float64())), "y": TARGET}), tmp_path / "b.parquet")
    r = run_cli(["ce", "--logits", f"{tmp_path / 'b.parquet'}:logits", "--target", f"{tmp_path / 'b.parquet'}:y"])
    assert r.code == 0, r.stderr
    assert float(r.stdout) == pytest.approx(BASE_LOSS, rel=1e-15)


# --------------------------------------------------------------------------- HDF5


def test_hdf5_datasets(tmp_path):
    import h5py
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 5))
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["batch/logits"] = x
        f.create_dataset("batch/packed", data=x.astype(np.float32), compression="gzip", chunks=(2, 5))
        f.create_dataset("big_endian", data=np.arange(4, dtype=">i4"))
        f["batch/labels"] = np.array([0, 1, 4, 2, 3, 0])
    logits = read(f"{tmp_path / 'd.h5'}:/batch/logits")
    assert isinstance(logits, np.memmap) and same(logits, x)
    assert same(read(f"{tmp_path / 'd.h5'}:batch/logits"), x)
    packed = read(f"{tmp_path / 'd.h5'}:/batch/packed")
    assert packed.dtype == np.float32 and same(packed, x.astype(np.float32))
    assert same(read(f"{tmp_path / 'd.h5'}:/big_endian"), [0, 1, 2, 3])
    with h5py.File(tmp_path / "one.hdf5", "w") as f:
        f["only"] = x
    assert same(read(str(tmp_path / "one.hdf5")), x)


def test_cli_on_hdf5(tmp_path, run_cli):
    import h5py
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["l"] = np.array(LOGITS)
        f["y"] = np.array(TARGET)
    r = run_cli(["ce", "--logits", f"{tmp_path / 'b.h5'}:/l", "--target", f"{tmp_path / 'b.h5'}:/y"])
    assert r.code == 0, r.stderr
    assert float(r.stdout) == pytest.approx(BASE_LOSS, rel=1e-15)


# --------------------------------------------------------------------------- optional packages missing


@pytest.mark.parametrize("module, suffix, extra", [("pyarrow", ".parquet", "arrow"), ("pyarrow", ".feather", "arrow"),
                                                   ("pyarrow", ".arrow", "arrow"), ("h5py", ".h5", "hdf5"),
                                                   ("h5py", ".hdf5", "hdf5")])
def test_missing_optional_package_is_a_usage_error_naming_the_extra(tmp_path, run_cli, monkeypatch, module, suffix, extra):
    (tmp_path / f"x{suffix}").write_bytes(b"whatever")
    import sys

    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    monkeypatch.chdir(tmp_path)
    r = run_cli(["ce", "--logits", f"x{suffix}", "--target", "[0]"])
    assert r.code == 2, r.stderr
    assert f"pip install 'lossctl[{extra}]'" in r.stderr and f"x{suffix}" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_missing_pyarrow_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['pyarrow'] = None\n")
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{Path(__file__).resolve().parents[1]}"}
    r = subprocess.run([sys.executable, "-m", "lossctl", "ce", "--logits", "x.parquet", "--target", "[0]"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "pip install 'lossctl[arrow]'" in r.stderr


# --------------------------------------------------------------------------- -o FILE.safetensors


@pytest.mark.parametrize("stream", [False, True])
def test_output_safetensors_in_memory_and_streamed(tmp_path, monkeypatch, run_cli, stream):
    import safetensors.numpy as st
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(9)
    np.save("x.npy", rng.standard_normal((501, 7)).astype(np.float32))
    np.save("y.npy", rng.integers(0, 7, 501))
    if stream:
        monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", "1")
        monkeypatch.setenv("LOSSCTL_BLOCK_BYTES", "600")
    else:
        monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", str(1 << 40))
    for out in ("o.safetensors", "o.npz"):
        r = run_cli(["ce", "--logits", "x.npy", "--target", "y.npy", "--grad", "-o", out, "--format", "plain"])
        assert r.code == 0, r.stderr
    got = st.load_file("o.safetensors")  # the reference reader
    ref = np.load("o.npz")
    assert sorted(got) == sorted(ref.files) == ["grad_logits", "per_sample"]
    for k in ref.files:
        assert got[k].dtype == ref[k].dtype and np.array_equal(got[k], ref[k]), k
    assert same(read("o.safetensors:per_sample"), ref["per_sample"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary parts left behind"


def test_output_safetensors_streamed_equals_in_memory_byte_for_byte(tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(10)
    np.save("x.npy", rng.standard_normal((300, 5)))
    np.save("y.npy", rng.standard_normal((300, 5)))
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", str(1 << 40))
    assert run_cli(["mse", "--pred", "x.npy", "--target", "y.npy", "--grad", "-o", "a.safetensors"]).code == 0
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", "1")
    monkeypatch.setenv("LOSSCTL_BLOCK_BYTES", "400")
    assert run_cli(["mse", "--pred", "x.npy", "--target", "y.npy", "--grad", "-o", "b.safetensors"]).code == 0
    assert Path("a.safetensors").read_bytes() == Path("b.safetensors").read_bytes()


# --------------------------------------------------------------------------- several tensors at once (--params)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_params_from_a_state_dict(tmp_path, run_cli, monkeypatch, suffix):
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(1)
    sd = {k: v.detach() for k, v in torch.nn.Linear(3, 4).state_dict().items()}
    sd["emb.weight"] = torch.randn(5, 2).to(torch.bfloat16)
    monkeypatch.chdir(tmp_path)
    if suffix == ".pt":
        torch.save(sd, "w.pt")
    else:
        save_file(sd, "w.safetensors")
    from lossctl.io.readers import read_named_arrays

    got = read_named_arrays(parse_source(f"w{suffix}"), "--params")
    assert sorted(got) == sorted(sd)
    for k, v in sd.items():
        assert same(got[k], v.double().numpy()), k
    r = run_cli(["ce", "--logits", json.dumps(LOGITS), "--target", json.dumps(TARGET), "--l2", "0.5",
                 "--params", f"w{suffix}", "--exclude-params", "", "--format", "json"])
    assert r.code == 0, r.stderr
    penalty = 0.5 * 0.5 * sum(float((v.double() ** 2).sum()) for v in sd.values())
    assert json.loads(r.stdout)["loss"] == pytest.approx(BASE_LOSS + penalty, rel=1e-12)


# --------------------------------------------------------------------------- bfloat16 widened block by block


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bfloat16_logits_stream_block_by_block(tmp_path, monkeypatch, run_cli, dtype):
    """A streamed call widens each block of an encoded tensor into its buffer: the whole tensor is
    never decoded (tracemalloc's peak stays under the size of its float32 copy), and the loss is
    torch's float64 loss on the same bfloat16 values."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(12)
    logits = (torch.randn(4000, 500, generator=g) * 3).to(torch.bfloat16)  # 4 MB of bf16, 8 MB as float32
    target = torch.randint(0, 500, (4000,), generator=g)
    save_file({"logits": logits}, str(tmp_path / "l.safetensors"))
    np.save(tmp_path / "y.npy", target.numpy())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", "1")
    monkeypatch.setenv("LOSSCTL_BLOCK_BYTES", str(256 << 10))
    import tracemalloc

    tracemalloc.start()
    try:
        r = run_cli(["ce", "--logits", "l.safetensors", "--target", "y.npy", "--dtype", dtype, "--format", "plain"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.code == 0, r.stderr
    ref = torch.nn.functional.cross_entropy(logits.double(), target).item()
    assert float(r.stdout) == pytest.approx(ref, rel=1e-12 if dtype == "float64" else 1e-6)
    assert peak < 6_000_000, f"peak {peak:,} bytes: the tensor was decoded whole"
