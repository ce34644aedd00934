"""Thread settings the pipelines share: OpenCV's worker count, and background work that yields.

MediaPipe's FaceLandmarker runs its graph on threads of its own. On a machine with few cores, any
other runnable thread (decoding, FACS, spotting, writing, plotting) delays those threads a little
each frame, and the delays add up on the tracking's critical path. Work that has slack can run at a
lower CPU priority instead: it still gets every idle moment of a core, and MediaPipe gets the core
first when it wants it (Linux, where each thread has its own priority; elsewhere nothing changes).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import cv2

T = TypeVar("T")


@contextlib.contextmanager
def opencv_threads(n: int | None) -> Iterator[None]:
    """OpenCV's thread count set to ``n`` (None: unchanged) for the block, then put back."""
    before = cv2.getNumThreads()
    if n is not None:
        cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def lower_priority(nice: int | None) -> None:
    """Make the calling thread's nice value ``nice`` if that is lower priority than it has now.

    Linux only (a thread's own priority); never raises the priority (that needs privileges), and
    does nothing where the system refuses. Threads started by this thread inherit the value."""
    if nice is None or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)


def run_yielding(work: Callable[[threading.Event], T], nice: int | None, name: str) -> T:
    """Run ``work(cancel)`` in a thread of its own at priority ``nice`` and wait for its result.

    Every thread ``work`` starts inherits that priority, so it must not start the ones that should
    keep theirs (MediaPipe's). ``work`` checks ``cancel`` now and then: Ctrl-C (or any error) while
    waiting sets it, waits for ``work`` to stop and re-raises. An error in ``work`` re-raises here.
    """
    cancel, done = threading.Event(), threading.Event()
    box: dict[str, object] = {}

    def target() -> None:
        lower_priority(nice)
        try:
            box["result"] = work(cancel)
        except BaseException as e:  # handed to the waiting thread
            box["error"] = e
        finally:
            done.set()

    worker = threading.Thread(target=target, name=name, daemon=True)
    worker.start()
    try:
        done.wait()  # an Event, not join(): a join that Ctrl-C interrupted may not wait again
    except BaseException:
        cancel.set()
        done.wait()
        worker.join()
        raise
    worker.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]
