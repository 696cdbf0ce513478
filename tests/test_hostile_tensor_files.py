"""Hostile and broken tensor files (.safetensors, .pt, parquet/arrow, HDF5), each a CLI test.

The same checks as tests/test_hostile_inputs.py (whose runner this reuses): the
exit code, one ``error:`` line on stderr naming the file and the problem, no
traceback, every file byte-identical afterwards, and for the pickle payloads a
marker file that would exist had anything been executed.
"""

from __future__ import annotations

import io
import json
import pickle
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from test_hostile_inputs import BASE_LOSS, LOGITS, MARKER, TARGET, Case, _c, _check_streams, base_files, several, text

CE = ("ce", "--logits")


# --------------------------------------------------------------------------- .safetensors builders


def st_bytes(header, data: bytes = b"", length: int | None = None) -> bytes:
    """A .safetensors file: the header (an object, or raw bytes), its length prefix (or a lie), the data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return (len(raw) if length is None else length).to_bytes(8, "little") + raw + data


def st_good(shape=(2, 3), dtype="F64", values=LOGITS) -> tuple[dict, bytes]:
    data = np.asarray(values, dtype=np.float64).tobytes()
    return {"logits": {"dtype": dtype, "shape": list(shape), "data_offsets": [0, len(data)]}}, data


def st(name: str, header=None, data: bytes | None = None, length: int | None = None, cut: int = 0) -> callable:
    def build(d: Path) -> None:
        h, good = st_good()
        content = st_bytes(h if header is None else header, good if data is None else data, length)
        (d / name).write_bytes(content[:len(content) - cut] if cut else content)
    return build


def entry(dtype="F64", shape=(2, 3), offsets=(0, 48)) -> dict:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


GOOD_DATA = np.asarray(LOGITS, dtype=np.float64).tobytes()
ST = "x.safetensors"

SAFETENSORS_CASES: list[Case] = [
    _c("st-empty", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "empty"], files=text(ST, b"")),
    _c("st-shorter-than-length", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "8-byte header length"], files=text(ST, b"\x10\x00")),
    _c("st-length-2^63", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "header length", "truncated"], files=st(ST, length=1 << 63)),
    _c("st-length-one-too-many", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "header length"],
       files=lambda d: (d / ST).write_bytes(st_bytes({}, b"", length=3))),
    _c("st-truncated-in-data", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "outside the data section", "truncated"],
       files=st(ST, cut=5)),
    _c("st-truncated-in-header", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "header length"],
       files=lambda d: (d / ST).write_bytes(st_bytes(st_good()[0], b"")[:30])),
    _c("st-header-not-json", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "not valid JSON"], files=st(ST, header=b"{nope")),
    _c("st-header-not-utf8", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "not UTF-8"], files=st(ST, header=b'{"\xff": 1}')),
    _c("st-header-a-list", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "a JSON list, not an object"], files=st(ST, header=[1, 2])),
    _c("st-header-nested-deeply", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}"],
       files=st(ST, header=b"[" * 100_000 + b"]" * 100_000)),
    _c("st-duplicate-key", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "appears twice"],
       files=st(ST, header=b'{"a": {"dtype": "F64", "shape": [2, 3], "data_offsets": [0, 48]}, '
                           b'"a": {"dtype": "F64", "shape": [2, 3], "data_offsets": [0, 48]}}')),
    _c("st-entry-not-object", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "tensor 'logits'", "not an object"],
       files=st(ST, header={"logits": [1]})),
    _c("st-metadata-not-object", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "__metadata__"],
       files=st(ST, header={"__metadata__": 3, "logits": entry()})),
    _c("st-bad-dtype", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "unknown dtype 'F99'"], files=st(ST, header={"logits": entry("F99")})),
    _c("st-dtype-not-text", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "unknown dtype 7"], files=st(ST, header={"logits": entry(7)})),
    _c("st-negative-shape", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "non-negative integers"],
       files=st(ST, header={"logits": entry(shape=(-2, -3))})),
    _c("st-float-shape", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "non-negative integers"],
       files=st(ST, header={"logits": entry(shape=(2.0, 3))})),
    _c("st-shape-claims-1e24-values", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "needs", "bytes but its offsets span 48"],
       files=st(ST, header={"logits": entry(shape=(10**12, 10**12))})),
    _c("st-shape-disagrees-with-offsets", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "(3, 3)", "needs 72 bytes"],
       files=st(ST, header={"logits": entry(shape=(3, 3))})),
    _c("st-offsets-past-the-end", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "bytes 48-96", "outside"],
       files=st(ST, header={"logits": entry(offsets=(48, 96))})),
    _c("st-offsets-huge", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "outside"],
       files=st(ST, header={"logits": entry(offsets=(2**64 - 48, 2**64))})),
    _c("st-offsets-reversed", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "outside"],
       files=st(ST, header={"logits": entry(offsets=(48, 0))})),
    _c("st-offsets-negative", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "outside"],
       files=st(ST, header={"logits": entry(offsets=(-48, 0))})),
    _c("st-offsets-not-a-pair", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "data_offsets"],
       files=st(ST, header={"logits": {"dtype": "F64", "shape": [2, 3], "data_offsets": [0]}})),
    _c("st-overlapping-tensors", [*CE, f"{ST}:a", "-t", "t.npy"], 3,
       [f"--logits {ST}:a", "tensors 'a' and 'b' overlap"],
       files=st(ST, header={"a": entry(offsets=(0, 48)), "b": entry(shape=(3,), offsets=(24, 48))})),
    _c("st-several-no-key", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "2 tensors (a, b)", "FILE.safetensors:NAME"],
       files=st(ST, header={"a": entry(shape=(3,), offsets=(0, 24)), "b": entry(shape=(3,), offsets=(24, 48))})),
    _c("st-no-tensors", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}", "0 tensors"], files=st(ST, header={}, data=b"")),
    _c("st-missing-key", [*CE, f"{ST}:nope", "-t", "t.npy"], 3, [f"--logits {ST}:nope", "no tensor 'nope'", "it has: logits"],
       files=st(ST)),
    _c("st-is-a-pickle", [*CE, ST, "-t", "t.npy"], 3, [f"--logits {ST}"], marker=True,
       files=lambda d: __import__("test_hostile_inputs").raw_pickle(ST)(d)),
    # ... and the ones that must work
    _c("st-good", [*CE, ST, "-t", "t.npy"], 0, stdout=BASE_LOSS, files=st(ST)),
    _c("st-metadata-and-padding", [*CE, ST, "-t", "t.npy"], 0, stdout=BASE_LOSS,
       files=st(ST, header=json.dumps({"__metadata__": {"format": "pt"}, "logits": entry()}).encode() + b"   ")),
    _c("st-hole-before-the-tensor", [*CE, ST, "-t", "t.npy"], 0, stdout=BASE_LOSS,
       files=st(ST, header={"logits": entry(offsets=(8, 56))}, data=b"\x00" * 8 + GOOD_DATA)),
]


# --------------------------------------------------------------------------- PyTorch zip builders
#
# data.pkl is assembled from opcodes, so that each case says exactly what the pickle claims
# (torch.save cannot write a lying file, and the tests must run without torch).


def P(value) -> bytes:
    """The opcodes that push ``value`` (plain data) on the unpickler's stack."""
    return pickle.dumps(value, protocol=2)[2:-1]


def G(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def tensor_ops(storage_type="DoubleStorage", key="0", offset=0, size=(2, 3), stride=(3, 1), numel=6) -> bytes:
    storage = b"(" + P("storage") + G("torch", storage_type) + P(key) + P("cpu") + P(numel) + b"tQ"
    return (G("torch._utils", "_rebuild_tensor_v2") + b"(" + storage + P(offset) + P(tuple(size)) + P(tuple(stride))
            + b"\x89" + G("collections", "OrderedDict") + b")R" + b"tR")


def dict_pickle(**items: bytes) -> bytes:
    return b"\x80\x02}(" + b"".join(P(k) + v for k, v in items.items()) + b"u."


def pt(name: str, pkl: bytes | None = None, storages: dict | None = None, *, compress_storage=False,
       pkl_compress=False, prefix="archive/", extra: dict | None = None, cut: int = 0, byteorder="little") -> callable:
    """A torch.save-like zip: PREFIX/data.pkl, PREFIX/data/KEY, PREFIX/byteorder."""
    def build(d: Path) -> None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(zipfile.ZipInfo(prefix + "data.pkl"), pkl if pkl is not None else dict_pickle(logits=tensor_ops()),
                        compress_type=zipfile.ZIP_DEFLATED if pkl_compress else zipfile.ZIP_STORED)
            zf.writestr(prefix + "byteorder", byteorder)
            zf.writestr(prefix + "version", "3\n")
            for key, data in (storages if storages is not None else {"0": GOOD_DATA}).items():
                zf.writestr(zipfile.ZipInfo(prefix + f"data/{key}"), data,
                            compress_type=zipfile.ZIP_DEFLATED if compress_storage else zipfile.ZIP_STORED)
            for member, data in (extra or {}).items():
                zf.writestr(prefix + member, data)
        content = buf.getvalue()
        (d / name).write_bytes(content[:len(content) - cut] if cut else content)
    return build


def pt_payload(name: str, module: str, func: str, args) -> callable:
    """A zip whose data.pkl calls ``module.func(*args)`` (os.system, builtins.open, ...)."""
    def build(d: Path) -> None:
        pkl = b"\x80\x02" + G(module, func) + P(tuple(a.replace("@", str(d)) for a in args)) + b"R."
        pt(name, pkl=pkl)(d)
    return build


def pt_reduce_payload(name: str) -> callable:
    """The marker object of test_hostile_inputs, pickled the ordinary way, as data.pkl."""
    def build(d: Path) -> None:
        from test_hostile_inputs import _OpenOnUnpickle

        pt(name, pkl=pickle.dumps({"logits": _OpenOnUnpickle(str(d / MARKER))}, protocol=2))(d)
    return build


def legacy_pt(d: Path) -> None:
    from test_hostile_inputs import _OpenOnUnpickle

    (d / "old.pt").write_bytes(pickle.dumps(_OpenOnUnpickle(str(d / MARKER)), protocol=2))


PT = "m.pt"
LOGITS_CSV_BYTES = b"10,0,-10\n8,8,8\n"
_BOMB = b"\x80\x02" + P([0.0] * 10) + b"." + b"\x00" * 50_000_000

PT_CASES: list[Case] = [
    _c("pt-good", [*CE, PT, "-t", "t.npy"], 0, stdout=BASE_LOSS, files=pt(PT)),
    _c("pt-good-.pth-prefix-other", [*CE, "m.pth:logits", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=pt("m.pth", prefix="m/")),
    _c("pt-good-.bin", [*CE, "m.bin", "-t", "t.npy"], 0, stdout=BASE_LOSS, files=pt("m.bin")),
    _c("pt-os-system", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "refused", "os.system", "nothing was executed"],
       files=pt_payload(PT, "os", "system", ["touch @/" + MARKER]), marker=True),
    _c("pt-posix-system", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "refused", "posix.system"],
       files=pt_payload(PT, "posix", "system", ["touch @/" + MARKER]), marker=True),
    _c("pt-builtins-open", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "refused", "builtins.open"],
       files=pt_payload(PT, "builtins", "open", ["@/" + MARKER, "w"]), marker=True),
    _c("pt-builtins-eval", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "refused", "builtins.eval"],
       files=pt_payload(PT, "builtins", "eval", ["open('@/" + MARKER + "', 'w')"]), marker=True),
    _c("pt-reduce-object", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "refused", "io.open"],
       files=pt_reduce_payload(PT), marker=True),
    _c("pt-torch-load-global", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "refused", "torch.load"],
       files=pt_payload(PT, "torch", "load", ["@/x.pt"])),
    _c("pt-rebuild-sparse", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "refused", "_rebuild_sparse_tensor"],
       files=pt_payload(PT, "torch._utils", "_rebuild_sparse_tensor", [])),
    _c("pt-unknown-persistent-id", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "refused", "persistent reference"],
       files=pt(PT, pkl=b"\x80\x02" + P(("evil", 1)) + b"Q.")),
    _c("pt-legacy-pickle", [*CE, "old.pt", "-t", "t.npy"], 3, ["--logits old.pt", "legacy PyTorch file", "re-save"],
       files=legacy_pt, marker=True),
    _c("pt-legacy-tar", [*CE, "old.pt", "-t", "t.npy"], 3, ["--logits old.pt", "legacy PyTorch tar"],
       files=lambda d: _tar(d / "old.pt")),
    _c("pt-empty", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "empty"], files=text(PT, b"")),
    _c("pt-not-a-zip", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "not a zip archive"], files=text(PT, LOGITS_CSV_BYTES)),
    _c("pt-truncated-zip", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "damaged zip"], files=pt(PT, cut=60)),
    _c("pt-no-data-pkl", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "no data.pkl"],
       files=lambda d: zipfile.ZipFile(d / PT, "w").writestr("archive/other", "x")),
    _c("pt-torchscript", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "TorchScript"],
       files=pt(PT, extra={"code/__torch__.py": "def f(): pass", "constants.pkl": b"\x80\x02)."})),
    _c("pt-big-endian", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "byte order"],
       files=pt(PT, byteorder="big")),
    _c("pt-missing-storage", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "storage archive/data/0 is missing"],
       files=pt(PT, storages={})),
    _c("pt-compressed-storage", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "compressed"],
       files=pt(PT, compress_storage=True)),
    _c("pt-data-pkl-zip-bomb", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "data.pkl", "zip bomb"],
       files=pt(PT, pkl=_BOMB, pkl_compress=True)),
    _c("pt-data-pkl-truncated", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "data.pkl is damaged"],
       files=pt(PT, pkl=dict_pickle(logits=tensor_ops())[:-20])),
    _c("pt-data-pkl-garbage", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "data.pkl is damaged"],
       files=pt(PT, pkl=bytes(range(256)))),
    _c("pt-data-pkl-bad-reduce-args", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "data.pkl is damaged"],
       files=pt(PT, pkl=b"\x80\x02" + G("collections", "OrderedDict") + P((1, 2, 3)) + b"R.")),
    _c("pt-data-pkl-claims-2-GiB-bytes", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "data.pkl is damaged"],
       files=pt(PT, pkl=b"\x80\x03B" + (2**31).to_bytes(4, "little") + b"abc")),
    _c("pt-data-pkl-claims-8-GiB-bytearray", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "data.pkl is damaged"],
       files=pt(PT, pkl=b"\x80\x05\x96" + (2**33).to_bytes(8, "little") + b"abc")),
    _c("pt-data-pkl-out-of-band-buffer", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "out-of-band"],
       files=pt(PT, pkl=b"\x80\x05\x97.")),
    _c("pt-list-containing-itself", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "0 tensors"],
       files=pt(PT, pkl=b"\x80\x02]q\x00h\x00a.")),
    _c("pt-shared-nodes-2^60-paths", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "0 tensors"],
       files=pt(PT, pkl=b"\x80\x02]q\x00" + b"".join(b"h%c" % i + b"h%c" % i + b"\x86q%c" % (i + 1) for i in range(60)) + b".")),
    _c("pt-storage-too-short", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "reach element 5", "storage of 3"],
       files=pt(PT, storages={"0": GOOD_DATA[:24]})),
    _c("pt-offset-out-of-range", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "offset 4"],
       files=pt(PT, pkl=dict_pickle(logits=tensor_ops(offset=4)))),
    _c("pt-stride-out-of-range", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "stride (1000, 1)"],
       files=pt(PT, pkl=dict_pickle(logits=tensor_ops(stride=(1000, 1))))),
    _c("pt-size-claims-1e24", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "(1000000000000, 1000000000000)"],
       files=pt(PT, pkl=dict_pickle(logits=tensor_ops(size=(10**12, 10**12))))),
    _c("pt-negative-stride", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "non-negative integers"],
       files=pt(PT, pkl=dict_pickle(logits=tensor_ops(stride=(-3, 1))))),
    _c("pt-size-stride-lengths-differ", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "matching lengths"],
       files=pt(PT, pkl=dict_pickle(logits=tensor_ops(stride=(3,))))),
    _c("pt-float-size", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "non-negative integers"],
       files=pt(PT, pkl=dict_pickle(logits=tensor_ops(size=(2.0, 3))))),
    _c("pt-complex", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "complex numbers are not supported"],
       files=pt(PT, pkl=dict_pickle(logits=tensor_ops(storage_type="ComplexDoubleStorage", size=(3,), stride=(1,))))),
    _c("pt-unknown-storage-type", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "refused", "torch.EvilStorage"],
       files=pt(PT, pkl=dict_pickle(logits=tensor_ops(storage_type="EvilStorage")))),
    _c("pt-missing-key", [*CE, f"{PT}:a.b", "-t", "t.npy"], 3, [f"--logits {PT}:a.b", "no key 'a.b'", "tensors: logits"],
       files=pt(PT)),
    _c("pt-key-not-a-tensor", [*CE, f"{PT}:name", "-t", "t.npy"], 3, [f"--logits {PT}:name", "'name' is str, not a tensor"],
       files=pt(PT, pkl=dict_pickle(logits=tensor_ops(), name=P("x")))),
    _c("pt-no-tensors", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "0 tensors"], files=pt(PT, pkl=dict_pickle(a=P(1)))),
    _c("pt-several-no-key", [*CE, PT, "-t", "t.npy"], 3, [f"--logits {PT}", "2 tensors (a, b.c)", "FILE.pt:KEY"],
       files=pt(PT, pkl=b"\x80\x02}(" + P("a") + tensor_ops() + P("b") + b"}(" + P("c") + tensor_ops() + b"uu.")),
]


def _tar(path: Path) -> None:
    import tarfile

    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("sys_info")
        data = b"\x80\x02}."
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


# --------------------------------------------------------------------------- parquet / arrow / HDF5 builders


def parquet(name: str, cut: int = 0, **columns) -> callable:
    def build(d: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table(columns), d / name)
        if cut:
            data = (d / name).read_bytes()
            (d / name).write_bytes(data[:len(data) - cut])
    return build


def arrow_file(name: str, cut: int = 0, **columns) -> callable:
    def build(d: Path) -> None:
        import pyarrow as pa

        table = pa.table(columns)
        with pa.OSFile(str(d / name), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
        if cut:
            data = (d / name).read_bytes()
            (d / name).write_bytes(data[:len(data) - cut])
    return build


def h5(name: str, cut: int = 0, **datasets) -> callable:
    def build(d: Path) -> None:
        import h5py

        with h5py.File(d / name, "w") as f:
            for key, value in datasets.items():
                if callable(value):
                    value(f, key)
                else:
                    f[key.replace("__", "/")] = value
        if cut:
            data = (d / name).read_bytes()
            (d / name).write_bytes(data[:len(data) - cut])
    return build


def parquet_lazy(name: str, make) -> callable:
    def build(d: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table(make(pa)), d / name)
    return build


def _external_link(f, key):
    import h5py

    f[key] = h5py.ExternalLink("/etc/other.h5", "/x")


def _big_chunked(f, key):
    f.create_dataset(key, data=np.zeros((300_000,)), compression="gzip", chunks=(10_000,))


def _strings(f, key):
    f[key] = np.array([b"a", b"b"])


ARROW_H5_CASES: list[Case] = [
    _c("parquet-good", [*CE, "p.parquet:l", "-t", "p.parquet:y"], 0, stdout=BASE_LOSS,
       files=parquet_lazy("p.parquet", lambda pa: {"l": pa.array(LOGITS, type=pa.list_(pa.float64())), "y": TARGET})),
    _c("parquet-truncated", [*CE, "p.parquet", "-t", "t.npy"], 3, ["--logits p.parquet", "not a valid .parquet file"],
       files=parquet("p.parquet", cut=30, a=[1.0, 2.0])),
    _c("parquet-garbage", [*CE, "p.parquet", "-t", "t.npy"], 3, ["--logits p.parquet", "not a valid .parquet file"],
       files=text("p.parquet", bytes(range(256)) * 8)),
    _c("parquet-empty", [*CE, "p.parquet", "-t", "t.npy"], 3, ["--logits p.parquet", "not a valid .parquet file"],
       files=text("p.parquet", b"")),
    _c("parquet-missing-column", [*CE, "p.parquet:z", "-t", "t.npy"], 3, ["--logits p.parquet:z", "no column 'z'", "columns: a"],
       files=parquet("p.parquet", a=[1.0, 2.0])),
    _c("parquet-nulls", [*CE, "p.parquet:a", "-t", "t.npy"], 3, ["--logits p.parquet:a", "a null value", "flat index 1"],
       files=parquet("p.parquet", a=[1.0, None, 3.0])),
    _c("parquet-text-column", [*CE, "p.parquet:a", "-t", "t.npy"], 3, ["--logits p.parquet:a", "holds string", "not numbers"],
       files=parquet("p.parquet", a=["x", "y"])),
    _c("parquet-ragged-lists", [*CE, "p.parquet:a", "-t", "t.npy"], 3, ["--logits p.parquet:a", "lists of different lengths (2 to 3)"],
       files=parquet_lazy("p.parquet", lambda pa: {"a": pa.array([[1.0, 2.0], [1.0, 2.0, 3.0]])})),
    _c("parquet-null-inside-a-list", [*CE, "p.parquet:a", "-t", "t.npy"], 3, ["--logits p.parquet:a", "null"],
       files=parquet_lazy("p.parquet", lambda pa: {"a": pa.array([[1.0, None], [1.0, 2.0]])})),
    _c("parquet-larger-than-the-cap", [*CE, "p.parquet:a", "-t", "t.npy"], 3, ["--logits p.parquet:a", "declares", "LOSSCTL_MAX_INPUT_BYTES"],
       files=parquet_lazy("p.parquet", lambda pa: {"a": np.arange(300_000, dtype=np.float64)})),
    _c("arrow-truncated", [*CE, "a.arrow", "-t", "t.npy"], 3, ["--logits a.arrow", "not a valid .arrow file"],
       files=arrow_file("a.arrow", cut=40, a=[1.0, 2.0])),
    _c("arrow-garbage", [*CE, "a.arrow", "-t", "t.npy"], 3, ["--logits a.arrow", "not a valid .arrow file"],
       files=text("a.arrow", bytes(range(256)) * 8)),
    _c("feather-is-parquet", [*CE, "a.feather", "-t", "t.npy"], 3, ["--logits a.feather", "not a valid .feather file"],
       files=lambda d: (parquet("a.parquet", a=[1.0])(d), (d / "a.parquet").rename(d / "a.feather"))),
    _c("h5-good", [*CE, "d.h5:/g/l", "-t", "d.h5:g/y"], 0, stdout=BASE_LOSS,
       files=h5("d.h5", g__l=np.array(LOGITS), g__y=np.array(TARGET))),
    _c("h5-truncated", [*CE, "d.h5", "-t", "t.npy"], 3, ["--logits d.h5"], files=h5("d.h5", cut=200, x=np.array(LOGITS))),
    _c("h5-garbage", [*CE, "d.h5", "-t", "t.npy"], 3, ["--logits d.h5", "not a valid HDF5 file"],
       files=text("d.h5", bytes(range(256)) * 8)),
    _c("h5-several-no-key", [*CE, "d.h5", "-t", "t.npy"], 3, ["--logits d.h5", "2 datasets (/a, /b)", "FILE.h5:/group/dataset"],
       files=h5("d.h5", a=np.ones(2), b=np.ones(2))),
    _c("h5-missing-key", [*CE, "d.h5:/nope", "-t", "t.npy"], 3, ["--logits d.h5:/nope", "no dataset '/nope'", "datasets: /a"],
       files=h5("d.h5", a=np.ones(2))),
    _c("h5-group", [*CE, "d.h5:/g", "-t", "t.npy"], 3, ["--logits d.h5:/g", "a group, not a dataset", "/g/l"],
       files=h5("d.h5", g__l=np.ones(2))),
    _c("h5-external-link", [*CE, "d.h5:/ext", "-t", "t.npy"], 3, ["--logits d.h5:/ext", "link to another file", "refused"],
       files=h5("d.h5", ext=_external_link)),
    _c("h5-strings", [*CE, "d.h5:/s", "-t", "t.npy"], 3, ["--logits d.h5:/s", "not numbers"], files=h5("d.h5", s=_strings)),
    _c("h5-chunked-larger-than-the-cap", [*CE, "d.h5:/z", "-t", "t.npy"], 3, ["--logits d.h5:/z", "chunked or compressed",
                                                                             "LOSSCTL_MAX_INPUT_BYTES"],
       files=h5("d.h5", z=_big_chunked)),
]

CASES = SAFETENSORS_CASES + PT_CASES + ARROW_H5_CASES
assert len({c.id for c in CASES}) == len(CASES), "duplicate case ids"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_tensor_file(case: Case, run_cli, tmp_path, monkeypatch, file_hashes):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOSSCTL_MAX_INPUT_BYTES", str(2_000_000))
    base_files(tmp_path)
    if case.files is not None:
        case.files(tmp_path)
    before = file_hashes(tmp_path)
    tracemalloc.start()
    try:
        r = run_cli(list(case.argv), stdin=case.stdin)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.code == case.code, r.stderr
    _check_streams(case, r.code, r.stdout, r.stderr)
    assert peak < 50 << 20, f"{peak} bytes allocated: a claimed size was believed"
    assert file_hashes(tmp_path) == before, "an input file changed, or a file was created or deleted"
    if case.marker:
        assert not (tmp_path / MARKER).exists(), "the payload ran"


def test_catalogue_size():
    assert len(SAFETENSORS_CASES) >= 25 and len(PT_CASES) >= 30


def test_pt_payloads_are_live(tmp_path, monkeypatch):
    """Control: the payloads create the marker when unpickled without restriction, so the cases
    above prove that lossctl never runs them."""
    monkeypatch.chdir(tmp_path)
    for build in (pt_payload(PT, "builtins", "open", ["@/" + MARKER, "w"]), pt_reduce_payload(PT)):
        build(tmp_path)
        with zipfile.ZipFile(tmp_path / PT) as zf:
            pickle.loads(zf.read("archive/data.pkl"))
        assert (tmp_path / MARKER).exists()
        (tmp_path / MARKER).unlink()
    legacy_pt(tmp_path)
    pickle.loads((tmp_path / "old.pt").read_bytes())
    assert (tmp_path / MARKER).exists()


def test_pt_reduce_payload_runs_under_torch_load_without_weights_only(tmp_path):
    import torch
    pt_reduce_payload(PT)(tmp_path)
    torch.load(tmp_path / PT, weights_only=False)
    assert (tmp_path / MARKER).exists()
