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
