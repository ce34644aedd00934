"""Thread helpers the pipelines share (avatar_bridge.pipeline.threads), on real threads."""

from __future__ import annotations

import os
import threading

import pytest

from avatar_bridge.pipeline.threads import lower_priority, run_yielding


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_lower_priority_only_lowers_and_only_the_calling_thread():
    caller = _nice()
    seen = []

    def work() -> None:
        lower_priority(15)
        seen.append(_nice())
        lower_priority(5)  # would raise the priority again: refused
        lower_priority(None)
        seen.append(_nice())

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen == [max(15, caller)] * 2 and _nice() == caller


def test_run_yielding_returns_raises_and_passes_the_cancel_event():
    got = run_yielding(lambda cancel: (threading.current_thread().name, _nice(), cancel.is_set()), 12, "x")
    assert got == ("x", max(12, _nice()), False)

    def fails(cancel: threading.Event) -> None:
        raise ValueError("from the worker")

    with pytest.raises(ValueError, match="from the worker"):
        run_yielding(fails, None, "y")
