"""``backend`` dask on a real cluster: a LocalCluster of 2 worker processes for the module.

Every loss that streams (derived from the registry) is computed on Dask from sharded inputs of
uneven sizes (glob, directory, zarr) and compared bit for bit with the in-memory result: the
reduced loss, its denominator and the per-sample values. Then the sharded reader's errors,
``-o`` and gradient shards, the progress callback, an unreachable scheduler, the missing extra,
and a worker killed mid-job (the exact result comes back; or, when the scheduler may not retry,
exit 3 and no output).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import warnings
from pathlib import Path

import distributed
import numpy as np
import pytest
from test_exact_reductions import STREAMABLE
from test_exactsum import same
from test_streaming import _cases, _streamable, _tile

import lossctl
from lossctl.backends.dask import DaskExecutor
from lossctl.io.readers import read_array
from lossctl.io.sources import parse_source




@pytest.fixture(scope="module")
def cluster():
    with warnings.catch_warnings():  # "port 8787 is in use" (another cluster on this machine): any port serves
        warnings.simplefilter("ignore", UserWarning)
        c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                     silence_logs=50)
    client = distributed.Client(c, set_as_default=False)
    try:
        yield c, client
    finally:
        client.close()
        c.close()


def _shard(tmp: Path, name: str, a: np.ndarray, cuts) -> Path:
    """``a`` written as .npy shards cut at ``cuts`` (uneven), in a directory of its own."""
    d = tmp / name
    d.mkdir(parents=True)
    bounds = [0] + [c for c in cuts if 0 < c < len(a)] + [len(a)]
    for k, (i0, i1) in enumerate(zip(bounds[:-1], bounds[1:])):
        np.save(d / f"{name}-{k:05d}-of-{len(bounds) - 1:05d}.npy", a[i0:i1])
    return d


def _read(text: str):
    return read_array(parse_source(text), f"--x {text}", lazy=True)


def _sharded_call(spec, call: dict, tmp: Path, cuts, glob: bool) -> dict:
    """``call`` with every row-aligned input replaced by its shards (read back lazily)."""
    layout = _streamable(spec, call)
    out = dict(call)
    for name in list(layout.sliced) + list(layout.params_sliced):
        a = np.ascontiguousarray(call[name])
        d = _shard(tmp, name, a, cuts)
        out[name] = _read(str(d / f"{name}-*.npy") if glob else str(d))
        assert getattr(out[name], "lazy_rows", False) and out[name].shape == a.shape
    return out


def test_the_losses_are_the_registry_s():
    assert "ce" in STREAMABLE and "mse" in STREAMABLE and len(STREAMABLE) >= 20


@pytest.mark.parametrize("name", STREAMABLE)
def test_every_streamable_loss_on_dask_is_the_in_memory_result_bit_for_bit(name, cluster, tmp_path):
    _, client = cluster
    address = client.scheduler.address
    spec = lossctl.registry().get(name)
    rng = np.random.default_rng(sum(map(ord, name)))
    cases = [{k: v for k, v in c.items() if k != "_name"} for c in _cases(name)]
    cases = [c for c in cases if _streamable(spec, c)]
    assert cases, f"{name}: no streamable fixture case"
    for j, case in enumerate(cases[:2]):
        tiled = _tile(spec, case, rng)
        sharded = _sharded_call(spec, tiled, tmp_path / str(j), cuts=(1, 2, 17, 30), glob=bool(j % 2))
        for reduction in spec.reductions:
            call = dict(tiled, reduction=reduction)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = lossctl.compute(dict(call), grad=False, stream=False)
                for chunk_rows in (None, 4):
                    got = lossctl.compute(dict(sharded, reduction=reduction), grad=False, executor=DaskExecutor(address, chunk_rows))
            what = (name, j, reduction, chunk_rows)
            if reduction == "none":
                assert np.asarray(got.loss).tobytes() == np.asarray(ref.loss).tobytes(), what
            else:
                assert same(got.loss, ref.loss), (what, got.loss, ref.loss)
                assert same(got.denominator, ref.denominator), what
            assert got.per_sample.shape == ref.per_sample.shape, what
            assert got.per_sample.tobytes() == ref.per_sample.tobytes(), what


def test_gradients_on_dask_match_the_in_memory_ones(cluster, tmp_path, rng):
    _, client = cluster
    x = rng.standard_normal((53, 6))
    t = rng.integers(0, 6, 53)
    sharded = {"logits": _read(str(_shard(tmp_path, "logits", x, (5, 6, 40)))), "target": t}
    for reduction in ("mean", "sum", "none"):
        ref = lossctl.compute({"loss": "ce", "logits": x, "target": t, "reduction": reduction}, grad=True, stream=False)
        got = lossctl.compute(dict(sharded, loss="ce", reduction=reduction), grad=True, executor=DaskExecutor(client.scheduler.address, 7))
        assert same(got.loss, ref.loss) if reduction != "none" else np.array_equal(got.loss, ref.loss)
        np.testing.assert_allclose(got.grad["logits"], ref.grad["logits"], rtol=1e-12, atol=1e-300)


def test_zarr_array_input(cluster, tmp_path, rng):
    import zarr

    _, client = cluster
    x = rng.standard_normal((61, 5)).astype(np.float32)
    t = rng.integers(0, 5, 61)
    z = zarr.create_array(store=str(tmp_path / "x.zarr"), shape=x.shape, chunks=(8, 5), dtype="float32")
    z[:] = x
    logits = _read(str(tmp_path / "x.zarr"))
    assert logits.shape == x.shape
    ref = lossctl.compute({"loss": "ce", "logits": x, "target": t, "reduction": "sum"}, stream=False)
    got = lossctl.compute({"loss": "ce", "logits": logits, "target": t, "reduction": "sum"}, executor=DaskExecutor(client.scheduler.address, 10))
    assert same(got.loss, ref.loss)
    local = lossctl.compute({"loss": "ce", "logits": logits, "target": t, "reduction": "sum"}, stream=True, block_rows=3)
    assert same(local.loss, ref.loss)
    url = _read("file://" + str(tmp_path / "x.zarr"))  # an fsspec URL, as s3://... would be
    got = lossctl.compute({"loss": "ce", "logits": url, "target": t, "reduction": "sum"},
                          executor=DaskExecutor(client.scheduler.address, 16))
    assert same(got.loss, ref.loss)


def test_shards_stream_on_the_local_backend_too(tmp_path, rng):
    x = rng.standard_normal((47, 4))
    t = rng.integers(0, 4, 47)
    logits = _read(str(_shard(tmp_path, "logits", x, (3, 4, 20))) + "/logits-*.npy")
    ref = lossctl.compute({"loss": "ce", "logits": x, "target": t}, stream=False)
    for rows in (1, 3, 7, 4096):
        got = lossctl.compute({"loss": "ce", "logits": logits, "target": t}, stream=True, block_rows=rows)
        assert same(got.loss, ref.loss), rows
        # the same kernels as in memory (the compiled one where built): the same values bit for bit
        assert got.per_sample.tobytes() == ref.per_sample.tobytes(), rows
    # not streamed (explain): read whole
    got = lossctl.compute({"loss": "ce", "logits": logits, "target": t}, explain=True)
    assert same(got.loss, ref.loss)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3, 5)), "has shape (3, 5), which does not join"),
    (np.zeros((3, 4), dtype=np.float32), "is <f4"),
])
def test_shards_that_do_not_join_are_refused_naming_the_shard(run_cli, tmp_path, bad, message):
    d = tmp_path / "logits"
    d.mkdir()
    np.save(d / "a.npy", np.zeros((4, 4)))
    np.save(d / "b.npy", bad)
    np.save(tmp_path / "t.npy", np.zeros(7, dtype=np.int64))
    r = run_cli(["ce", "--logits", str(d), "-t", str(tmp_path / "t.npy")])
    assert r.code == 3, r.stderr
    assert "shard b.npy" in r.stderr and message in r.stderr and "--logits" in r.stderr


def test_cli_output_in_order_and_gradient_shards_next_to_it(run_cli, cluster, tmp_path, rng):
    _, client = cluster
    x = rng.standard_normal((40, 3))
    t = rng.integers(0, 3, 40)
    d = _shard(tmp_path, "logits", x, (9, 10, 33))
    np.save(tmp_path / "t.npy", t)
    out = tmp_path / "loss.npy"
    r = run_cli(["ce", "--logits", str(d), "-t", str(tmp_path / "t.npy"), "--backend", "dask", "--scheduler",
                 client.scheduler.address, "--chunk-rows", "6", "-o", str(out), "--grad"])
    assert r.code == 0, r.stderr
    ref = lossctl.compute({"loss": "ce", "logits": x, "target": t}, grad=True, stream=False)
    assert float(r.stdout) == ref.loss
    assert np.load(out).tobytes() == ref.per_sample.tobytes()
    shards = sorted(tmp_path.glob("loss.grad_logits-*-of-00004.npy"))
    assert [len(np.load(p)) for p in shards] == [9, 1, 23, 7]
    np.testing.assert_allclose(np.concatenate([np.load(p) for p in shards]), ref.grad["logits"], rtol=1e-12)
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


def test_large_gradient_without_output_is_refused(run_cli, monkeypatch, tmp_path):
    from lossctl.backends import dask as backend

    monkeypatch.setattr(backend, "GRAD_BACK_BYTES", 100)
    np.save(tmp_path / "x.npy", np.zeros((40, 3)))
    np.save(tmp_path / "t.npy", np.zeros(40, dtype=np.int64))
    r = run_cli(["ce", "--logits", str(tmp_path / "x.npy"), "-t", str(tmp_path / "t.npy"), "--backend", "dask", "--grad"])
    assert r.code == 2 and "--output" in r.stderr and "shards" in r.stderr, r.stderr


def test_progress_follows_the_tasks(cluster, rng):
    _, client = cluster
    x, t = rng.standard_normal((30, 3)), rng.integers(0, 3, 30)
    seen = []
    lossctl.compute({"loss": "ce", "logits": x, "target": t}, executor=DaskExecutor(client.scheduler.address, 7), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(7, 30), (14, 30), (21, 30), (28, 30), (30, 30)]


def test_unreachable_scheduler_exits_2_quickly_naming_it(run_cli, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    started = time.monotonic()
    r = run_cli(["ce", "--logits", "[[1,2],[3,4]]", "-t", "[0,1]", "--backend", "dask", "--scheduler", address])
    assert r.code == 2 and address in r.stderr and "--scheduler" in r.stderr, r.stderr
    assert time.monotonic() - started < 10


def test_without_the_extra_backend_dask_exits_2_naming_it(run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    r = run_cli(["ce", "--logits", "[[1,2],[3,4]]", "-t", "[0,1]", "--backend", "dask"])
    assert r.code == 2 and "pip install 'lossctl[dask]'" in r.stderr, r.stderr


def test_scheduler_without_backend_dask_is_a_usage_error(run_cli):
    r = run_cli(["ce", "--logits", "[[1,2],[3,4]]", "-t", "[0,1]", "--scheduler", "tcp://127.0.0.1:1"])
    assert r.code == 2 and "--backend dask" in r.stderr, r.stderr


@pytest.mark.parametrize("processes", ["0", "1"], ids=["worker-threads", "worker-processes"])
def test_a_local_cluster_is_started_without_scheduler(run_cli, monkeypatch, processes):
    import threading

    from lossctl.backends import dask as backend

    monkeypatch.setenv("LOSSCTL_DASK_WORKERS", "2")
    monkeypatch.setenv("LOSSCTL_DASK_PROCESSES", processes)
    assert backend.local_processes() == (processes == "1")
    before = set(threading.enumerate())
    r = run_cli(["ce", "--logits", "[[10,0,-10],[8,8,8],[1,2,3]]", "-t", "[0,2,1]", "--backend", "dask", "--chunk-rows", "1"])
    assert r.code == 0, r.stderr
    ref = lossctl.compute({"loss": "ce", "logits": [[10, 0, -10], [8, 8, 8], [1, 2, 3]], "target": [0, 2, 1]}, stream=False)
    assert float(r.stdout) == ref.loss
    # the call's cluster is gone with it: no worker thread left behind in this process
    time.sleep(0.2)
    left = [t.name for t in set(threading.enumerate()) - before
            if t.is_alive() and ("Dask-Default-Threads" in t.name or t.name == "IO loop")]
    assert not left, left


def _fault_inputs(tmp_path, rng):
    x = rng.standard_normal((240_000, 8))
    t = rng.standard_normal((240_000, 8))
    cuts = (50_000, 61_000, 170_000)
    return x, t, {"pred": _read(str(_shard(tmp_path, "pred", x, cuts))),
                  "target": _read(str(_shard(tmp_path, "target", t, cuts)))}


def _killer(cluster, client):
    """``kill()``: SIGKILL one worker process, once, while the scheduler has tasks running on it."""
    address, pid = sorted(client.run(os.getpid).items())[0]
    state = {"killed": False}

    def kill():  # called after each chunk; kills at the first call that finds a task running there
        ws = cluster.scheduler.workers.get(address)
        if not state["killed"] and ws is not None and ws.processing:
            os.kill(pid, signal.SIGKILL)
            state["killed"] = True

    return kill, state


def test_a_worker_killed_mid_job_still_gives_the_exact_result(cluster, tmp_path, rng):
    c, client = cluster
    client.wait_for_workers(2, timeout=60)
    x, t, sharded = _fault_inputs(tmp_path, rng)
    ref = lossctl.compute({"loss": "mse", "pred": x, "target": t, "reduction": "sum"}, stream=False)
    kill, state = _killer(c, client)
    got = lossctl.compute(dict(sharded, loss="mse", reduction="sum"), executor=DaskExecutor(client.scheduler.address, 2_000),
                          progress=lambda done, total: kill() if done >= 20_000 else None)
    assert state["killed"]
    assert same(got.loss, ref.loss), (got.loss, ref.loss)
    client.wait_for_workers(2, timeout=60)


def test_when_the_scheduler_gives_up_exit_3_and_no_output(run_cli, cluster, tmp_path, rng, monkeypatch):
    c, client = cluster
    client.wait_for_workers(2, timeout=60)
    x, t, _ = _fault_inputs(tmp_path, rng)
    import contextlib

    from lossctl.cli import progress as progress_module

    state = {"killed": 0}

    def kill_busy_workers(done, total):  # after each chunk: SIGKILL every worker with a task running (3 times at most)
        for ws in list(c.scheduler.workers.values()):
            if ws.processing and state["killed"] < 3:
                os.kill(ws.pid, signal.SIGKILL)
                state["killed"] += 1

    @contextlib.contextmanager
    def progress_bar(*args, **kwargs):  # the CLI's progress callback
        yield kill_busy_workers

    monkeypatch.setattr(progress_module, "progress_bar", progress_bar)
    allowed = c.scheduler.allowed_failures
    c.scheduler.allowed_failures = 0  # no second chance: the scheduler gives up on the first loss
    out = tmp_path / "values.npy"
    try:
        r = run_cli(["mse", "--pred", str(tmp_path / "pred"), "-t", str(tmp_path / "target"), "--backend", "dask",
                     "--scheduler", client.scheduler.address, "--chunk-rows", "2000", "-o", str(out), "--grad"])
    finally:
        c.scheduler.allowed_failures = allowed
    assert state["killed"]
    assert r.code == 3, (r.code, r.stderr)
    assert "Dask" in r.stderr and "nothing was written" in r.stderr
    assert not out.exists() and not list(tmp_path.glob("values*")) and not [f for f in tmp_path.iterdir() if f.name.startswith(".")]
    client.wait_for_workers(2, timeout=60)


@pytest.mark.parametrize("shift, normalize", [(False, "tokens"), (True, "sequences"), (True, "global:100")])
def test_lm_on_dask_is_the_local_result_bit_for_bit(cluster, tmp_path, rng, shift, normalize):
    from lossctl import tokens

    _, client = cluster
    logits = rng.standard_normal((7, 9, 50)).astype(np.float32) * 4
    labels = rng.integers(0, 50, (7, 9))
    labels[2, 3] = labels[5, 0] = -100
    sharded = _read(str(_shard(tmp_path, "logits", logits, (2, 3))))
    call = {"labels": labels, "shift": shift, "normalize": normalize}
    ref = tokens.lm(dict(call, logits=logits), per_sample=True)
    for chunk_rows in (None, 5):
        got = tokens.lm(dict(call, logits=sharded), per_sample=True,
                        executor=DaskExecutor(client.scheduler.address, chunk_rows))
        assert same(got.loss, ref.loss) and got.tokens == ref.tokens
        assert got.per_token.tobytes() == ref.per_token.tobytes()
        assert got.per_sequence["nll_sum"].tobytes() == ref.per_sequence["nll_sum"].tobytes()


def test_lm_cli_takes_the_backend(run_cli, cluster, tmp_path, rng):
    _, client = cluster
    logits = rng.standard_normal((4, 6, 11))
    np.save(tmp_path / "y.npy", rng.integers(0, 11, (4, 6)))
    d = _shard(tmp_path, "logits", logits, (1,))
    local = run_cli(["lm", "--logits", str(d), "--labels", str(tmp_path / "y.npy"), "-f", "json"])
    r = run_cli(["lm", "--logits", str(d), "--labels", str(tmp_path / "y.npy"), "-f", "json", "--backend", "dask",
                 "--scheduler", client.scheduler.address, "--chunk-rows", "5"])
    assert local.code == 0 and r.code == 0, r.stderr
    assert r.stdout == local.stdout


@pytest.mark.parametrize("shift, normalize", [(False, "tokens"), (True, "sequences"), (True, "global:100")])
def test_lm_gradient_and_derivation_on_dask_are_the_local_ones_bit_for_bit(cluster, tmp_path, rng, shift, normalize):
    from lossctl import tokens

    _, client = cluster
    logits = rng.standard_normal((7, 9, 50)).astype(np.float32) * 4
    labels = rng.integers(0, 50, (7, 9))
    labels[0, :] = -100  # the first counted token (the one derived) is not in the first row
    labels[2, 3] = labels[5, 0] = -100
    sharded = _read(str(_shard(tmp_path, "logits", logits, (2, 3))))
    call = {"labels": labels, "shift": shift, "normalize": normalize}
    ref = tokens.lm(dict(call, logits=logits), grad=True, explain=True)
    assert ref.grad.shape == logits.shape and np.any(ref.grad)
    for chunk_rows in (None, 5, 11):
        got = tokens.lm(dict(call, logits=sharded), grad=True, explain=True,
                        executor=DaskExecutor(client.scheduler.address, chunk_rows))
        assert same(got.loss, ref.loss)
        assert got.grad.shape == ref.grad.shape and got.grad.tobytes() == ref.grad.tobytes(), chunk_rows
        assert [(s.label, s.formula, np.float64(s.value if s.value is not None else np.nan).tobytes()) for s in got.steps] \
            == [(s.label, s.formula, np.float64(s.value if s.value is not None else np.nan).tobytes()) for s in ref.steps]
        # the gradient as shards next to an output file: the logits' sharding and shape
        out = tmp_path / f"o{chunk_rows}.npy"
        got = tokens.lm(dict(call, logits=sharded), grad=True,
                        executor=DaskExecutor(client.scheduler.address, chunk_rows, grad_output=out))
        assert got.grad is None and same(got.loss, ref.loss)
        shards = sorted(tmp_path.glob(f"o{chunk_rows}.grad_logits-*-of-00003.npy"))
        assert [np.load(p).shape for p in shards] == [(2, 9, 50), (1, 9, 50), (4, 9, 50)]
        assert np.concatenate([np.load(p) for p in shards]).tobytes() == ref.grad.tobytes()


def test_lm_cli_gradient_shards_and_explain_on_dask(run_cli, cluster, tmp_path, rng):
    _, client = cluster
    logits = rng.standard_normal((5, 6, 11))
    labels = rng.integers(0, 11, (5, 6))
    labels[1, 2] = -100
    np.save(tmp_path / "y.npy", labels)
    d = _shard(tmp_path, "logits", logits, (1, 4))
    base = ["lm", "--logits", str(d), "--labels", str(tmp_path / "y.npy"), "--shift"]
    dask = ["--backend", "dask", "--scheduler", client.scheduler.address, "--chunk-rows", "7"]
    local = run_cli(base + ["--explain", "--grad", "-f", "json"])
    r = run_cli(base + dask + ["--explain", "--grad", "-f", "json"])
    assert local.code == 0 and r.code == 0, r.stderr
    assert r.stdout == local.stdout
    out = tmp_path / "nll.npy"
    r = run_cli(base + dask + ["--grad", "-o", str(out)])
    assert r.code == 0, r.stderr
    from lossctl import tokens

    ref = tokens.lm({"logits": logits, "labels": labels, "shift": True}, grad=True, per_sample=True)
    assert np.load(out).tobytes() == ref.per_token.tobytes()
    shards = sorted(tmp_path.glob("nll.grad_logits-*-of-00003.npy"))
    assert [len(np.load(p)) for p in shards] == [1, 3, 1]
    assert np.concatenate([np.load(p) for p in shards]).tobytes() == ref.grad.tobytes()
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]
    again = run_cli(base + dask + ["--grad", "-o", str(out)])  # the shards are outputs: replaced only with --force
    assert again.code == 2 and "--force" in again.stderr, again.stderr


def test_lm_large_gradient_on_dask_without_output_is_refused(run_cli, monkeypatch, tmp_path):
    from lossctl.backends import dask as backend

    monkeypatch.setattr(backend, "GRAD_BACK_BYTES", 100)
    np.save(tmp_path / "x.npy", np.zeros((4, 5, 3)))
    np.save(tmp_path / "y.npy", np.zeros((4, 5), dtype=np.int64))
    r = run_cli(["lm", "--logits", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--backend", "dask",
                 "--grad"])
    assert r.code == 2 and "--output" in r.stderr and "shards" in r.stderr, r.stderr


def test_another_framework_s_convention_is_refused_on_dask(run_cli):
    r = run_cli(["mse", "--pred", "[1,2]", "-t", "[0,0]", "--convention", "keras", "--backend", "dask"])
    assert r.code == 2 and "keras convention" in r.stderr and "local backend" in r.stderr, r.stderr


def test_bfloat16_tensor_file_is_read_by_the_workers(cluster, tmp_path, rng):
    """A bfloat16 .safetensors tensor travels as its description (path, offset, shape): the
    workers read and widen their own rows; the result is the local one bit for bit."""
    import json

    from lossctl import tokens

    _, client = cluster
    bits = (rng.standard_normal((5, 6, 40)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    other = np.arange(7, dtype=np.float32)  # another tensor first: the logits start at an offset
    header = {"other": {"dtype": "F32", "shape": [7], "data_offsets": [0, 28]},
              "logits": {"dtype": "BF16", "shape": list(bits.shape), "data_offsets": [28, 28 + bits.nbytes]}}
    text = json.dumps(header).encode()
    path = tmp_path / "dump.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + other.tobytes() + bits.tobytes())
    logits = _read(f"{path}:logits")
    assert hasattr(logits, "widen")
    labels = rng.integers(0, 40, (5, 6))
    ref = tokens.lm({"logits": logits, "labels": labels, "shift": True}, per_sample=True)
    got = tokens.lm({"logits": logits, "labels": labels, "shift": True}, per_sample=True,
                    executor=DaskExecutor(client.scheduler.address, 7))
    assert same(got.loss, ref.loss) and got.per_token.tobytes() == ref.per_token.tobytes()
    from lossctl.backends.dask import row_source

    assert type(row_source(logits.reshape(30, 40), "logits")).__name__ == "EncodedRows"


def test_a_memory_mapped_npy_travels_as_its_description(tmp_path, rng):
    from lossctl.backends.dask import row_source

    x = rng.standard_normal((9, 4))
    np.save(tmp_path / "x.npy", x)
    described = row_source(_read(str(tmp_path / "x.npy")), "logits")
    assert getattr(described, "lazy_rows", False)
    assert np.array_equal(described.rows(2, 7), x[2:7])


def _lce_inputs(rng, n=2600, d=16, v=300):
    h = rng.standard_normal((n, d))
    w = rng.standard_normal((v, d)) / 2
    b = rng.standard_normal(v)
    y = rng.integers(0, v, n)
    y[[3, 1500]] = -100
    return h, w, b, y


@pytest.mark.parametrize("params", [{}, {"label_smoothing": 0.1, "weight": "w"}, {"target": "probs"},
                                    {"dtype": "float32"}], ids=["index", "weight-smoothing", "probs", "float32"])
def test_linear_ce_on_dask_is_the_local_result_bit_for_bit(cluster, tmp_path, rng, params):
    """More tokens than one block of the plan, hidden states in uneven shards that cut blocks:
    the loss, every value and the three gradients are the local engine's, for any chunking."""
    from lossctl import tokens
    from lossctl.losses.linear_ce import ROW_BLOCK

    _, client = cluster
    h, w, b, y = _lce_inputs(rng)
    assert len(h) > 2 * ROW_BLOCK
    params = dict(params)
    if params.get("weight") == "w":
        params["weight"] = rng.random(w.shape[0])
    if params.get("target") == "probs":
        p = rng.random((len(h), w.shape[0]))
        params["target"] = p / p.sum(1, keepdims=True)
    sharded = _read(str(_shard(tmp_path, "hidden", h, (1, 700, 2100))))
    np.save(tmp_path / "w.npy", w)
    lm_head = _read(str(tmp_path / "w.npy"))  # memory-mapped: travels as its description
    call = {"lm_head": w, "lm_head_bias": b, "target": y, **params}
    for reduction in ("mean", "none"):
        ref = tokens.linear_ce(dict(call, hidden=h, reduction=reduction), grad=True)
        assert set(ref.grad) == {"hidden", "lm_head", "lm_head_bias"}
        for chunk_rows in (None, 1, 5000):
            got = tokens.linear_ce(dict(call, hidden=sharded, lm_head=lm_head, reduction=reduction), grad=True,
                                   executor=DaskExecutor(client.scheduler.address, chunk_rows))
            what = (reduction, chunk_rows)
            assert np.asarray(got.loss).tobytes() == np.asarray(ref.loss).tobytes(), what
            assert got.per_sample.tobytes() == ref.per_sample.tobytes() and got.denominator == ref.denominator, what
            for name, g in ref.grad.items():
                assert got.grad[name].dtype == g.dtype and got.grad[name].tobytes() == g.tobytes(), (what, name)
    got = tokens.linear_ce(dict(call, hidden=sharded, lm_head=lm_head), executor=DaskExecutor(client.scheduler.address))
    assert got.grad == {} and same(got.loss, tokens.linear_ce(dict(call, hidden=h)).loss)


def test_linear_ce_cli_on_dask_writes_gradient_shards_next_to_the_output(run_cli, cluster, tmp_path, rng):
    from lossctl import tokens

    _, client = cluster
    h, w, b, y = _lce_inputs(rng, n=2100, d=8, v=50)
    d = _shard(tmp_path, "hidden", h, (1000, 1100))
    for name, a in (("w", w), ("b", b), ("y", y)):
        np.save(tmp_path / f"{name}.npy", a)
    base = ["linear-ce", "--hidden", str(d), "--lm-head", str(tmp_path / "w.npy"), "--lm-head-bias",
            str(tmp_path / "b.npy"), "--target", str(tmp_path / "y.npy")]
    dask = ["--backend", "dask", "--scheduler", client.scheduler.address, "--chunk-rows", "1500"]
    local = run_cli(base + ["-f", "json"])
    r = run_cli(base + dask + ["-f", "json"])
    assert local.code == 0 and r.code == 0, r.stderr
    assert r.stdout == local.stdout
    out = tmp_path / "loss.npy"
    r = run_cli(base + dask + ["--grad", "-o", str(out)])
    assert r.code == 0, r.stderr
    ref = tokens.linear_ce({"hidden": h, "lm_head": w, "lm_head_bias": b, "target": y}, grad=True)
    assert np.load(out).tobytes() == ref.per_sample.tobytes()
    shards = sorted(tmp_path.glob("loss.grad_hidden-*-of-00003.npy"))
    assert [len(np.load(p)) for p in shards] == [1000, 100, 1000]
    assert np.concatenate([np.load(p) for p in shards]).tobytes() == ref.grad["hidden"].tobytes()
    assert np.load(tmp_path / "loss.grad_lm_head-00000-of-00001.npy").tobytes() == ref.grad["lm_head"].tobytes()
    assert np.load(tmp_path / "loss.grad_lm_head_bias-00000-of-00001.npy").tobytes() == ref.grad["lm_head_bias"].tobytes()
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]
    (tmp_path / "loss.grad_lm_head-00000-of-00001.npy").unlink()
    again = run_cli(base + dask + ["--grad", "-o", str(tmp_path / "loss.npz")])  # the hidden shards exist: refused whole
    assert again.code == 2 and "--force" in again.stderr, again.stderr
    assert not (tmp_path / "loss.grad_lm_head-00000-of-00001.npy").exists()
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


def test_linear_ce_large_gradient_on_dask_without_output_is_refused(run_cli, monkeypatch, tmp_path):
    from lossctl.backends import dask as backend

    monkeypatch.setattr(backend, "GRAD_BACK_BYTES", 100)
    np.save(tmp_path / "h.npy", np.zeros((40, 3)))
    np.save(tmp_path / "w.npy", np.ones((5, 3)))
    np.save(tmp_path / "y.npy", np.zeros(40, dtype=np.int64))
    r = run_cli(["linear-ce", "--hidden", str(tmp_path / "h.npy"), "--lm-head", str(tmp_path / "w.npy"), "--target",
                 str(tmp_path / "y.npy"), "--backend", "dask", "--grad"])
    assert r.code == 2 and "--output" in r.stderr and "shards" in r.stderr, r.stderr


def test_linear_ce_bfloat16_tensors_are_read_by_the_workers(cluster, tmp_path, rng):
    """bfloat16 hidden states and lm-head in one .safetensors file travel as descriptions
    (path, offset, shape); the workers widen their own rows: the local numbers bit for bit."""
    import json

    from lossctl import tokens

    _, client = cluster
    n, d, v = 2100, 16, 100
    hb = (rng.standard_normal((n, d)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    wb = (rng.standard_normal((v, d)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    header = {"hidden": {"dtype": "BF16", "shape": [n, d], "data_offsets": [0, hb.nbytes]},
              "w": {"dtype": "BF16", "shape": [v, d], "data_offsets": [hb.nbytes, hb.nbytes + wb.nbytes]}}
    text = json.dumps(header).encode()
    path = tmp_path / "x.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + hb.tobytes() + wb.tobytes())
    call = {"hidden": _read(f"{path}:hidden"), "lm_head": _read(f"{path}:w"), "target": rng.integers(0, v, n)}
    assert hasattr(call["hidden"], "encoding")
    ref = tokens.linear_ce(call, grad=True)
    got = tokens.linear_ce(call, grad=True, executor=DaskExecutor(client.scheduler.address))
    assert same(got.loss, ref.loss) and got.per_sample.tobytes() == ref.per_sample.tobytes()
    assert all(got.grad[k].tobytes() == g.tobytes() for k, g in ref.grad.items()) and set(got.grad) == {"hidden", "lm_head"}
