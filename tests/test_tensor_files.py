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
    ml_dtypes = pytest.importorskip("ml_dtypes")
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
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bits = np.arange(256, dtype=np.uint8)
    assert same(decode(bits, encoding, dtype), bits.view(getattr(ml_dtypes, encoding)).astype(dtype))


def test_decoding_matches_torch_on_every_bit_pattern():
    torch = pytest.importorskip("torch")
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
    torch = pytest.importorskip("torch")
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
    monkeypatch.chdir(FIXTURES)  # a short origin: a long checkout path would be shortened in the message
    r = run_cli(["ce", "--logits", "dtypes.safetensors", "--target", "[0]"])
    assert r.code == 3
    assert "dtypes.safetensors" in r.stderr and "name one as FILE.safetensors:NAME" in r.stderr and "bf16" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_on_bfloat16_logits_matches_torch_float64(tmp_path, run_cli):
    torch = pytest.importorskip("torch")
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
    st = pytest.importorskip("safetensors.numpy")
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
