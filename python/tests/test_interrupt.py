"""Ctrl-C in the middle of engine.run stops the run: KeyboardInterrupt within a block or two,
nothing written."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

import engine


def test_ctrl_c_stops_a_long_run_and_writes_nothing(tmp_path):
    out = tmp_path / "big.h5ad"
    # 2,000,000 cells of counts normalised and written: minutes uninterrupted, even release.
    text = (
        "version: 1\nsteps:\n"
        "  - {id: data, op: synthetic_counts, n_obs: 2000000, n_vars: 2000}\n"
        "  - {id: norm, op: normalize_total, input: data}\n"
        f"outputs:\n  - {{step: norm, path: '{out}'}}\n"
    )
    # As a terminal's Ctrl-C: SIGINT's flag set while the main thread is inside the run.
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    started = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            engine.run(text, memory_limit="512M")
    finally:
        timer.cancel()
    assert time.perf_counter() - started < 15
    assert list(tmp_path.iterdir()) == []
