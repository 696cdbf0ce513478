"""lossctl.core.blas: NumPy's OpenBLAS held to one thread inside a block, restored after."""

from __future__ import annotations

import threading

import numpy as np

from lossctl.core import blas


def test_single_threaded_holds_one_thread_and_restores_the_count():
    before = blas.threads()
    assert before is not None and before >= 1  # NumPy here is built on OpenBLAS (the wheels' scipy-openblas)
    with blas.single_threaded() as held:
        assert held is True and blas.threads() == 1
        with blas.single_threaded() as inner:  # nested: still one, and the outer block restores
            assert inner is True and blas.threads() == 1
        assert blas.threads() == 1
        a = np.arange(64.0 * 64).reshape(64, 64)
        assert np.allclose(a @ np.eye(64), a)  # products still work
    assert blas.threads() == before


def test_concurrent_blocks_restore_the_count_once_all_end():
    before = blas.threads()
    inside, release = threading.Event(), threading.Event()

    def other():
        with blas.single_threaded():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    assert inside.wait(10)
    with blas.single_threaded():
        pass
    assert blas.threads() == 1  # the other thread's block is still open
    release.set()
    t.join(10)
    assert blas.threads() == before


def test_without_openblas_nothing_changes_and_linear_ce_gives_the_same_numbers(monkeypatch):
    """Another BLAS (or a system without ``dl_iterate_phdr``): no library is found, the hold
    reports False, and linear-ce's values and gradients stay equal to the held run's within
    float64 rounding (only which thread splits a product differs)."""
    from lossctl import tokens

    rng = np.random.default_rng(7)
    h, w = rng.standard_normal((40, 16)), rng.standard_normal((300, 16))
    t = rng.integers(0, 300, 40)
    held = tokens.linear_ce(hidden=h, lm_head=w, target=t, grad=True)

    monkeypatch.setattr(blas, "_loaded_objects", lambda: [])
    monkeypatch.setattr(blas, "_STATE", {})
    assert blas.threads() is None
    with blas.single_threaded() as on:
        assert on is False
    free = tokens.linear_ce(hidden=h, lm_head=w, target=t, grad=True)
    assert np.isclose(free.loss, held.loss, rtol=1e-14, atol=0)
    for name, g in held.grad.items():
        assert np.allclose(free.grad[name], g, rtol=1e-12, atol=1e-15), name
