"""Threads the pipelines share: OpenCV's worker count, background work that yields, and stages
that run ahead of the next one in a thread of their own (:class:`Prefetched`).

MediaPipe's FaceLandmarker runs its graph on threads of its own. On a machine with few cores, any
other runnable thread (decoding, FACS, spotting, writing, plotting) delays those threads a little
each frame, and the delays add up on the tracking's critical path. Work that has slack can run at a
lower CPU priority instead: it still gets every idle moment of a core, and MediaPipe gets the core
first when it wants it (Linux, where each thread has its own priority; elsewhere nothing changes).
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import cv2

T = TypeVar("T")


@contextlib.contextmanager
def _set_for_block(get: Callable[[], T], put: Callable[[T], object], value: T | None) -> Iterator[None]:
    """A process-wide setting changed to ``value`` (None: unchanged) for the block, then put back."""
    before = get()
    if value is not None:
        put(value)
    try:
        yield
    finally:
        put(before)


def opencv_threads(n: int | None) -> contextlib.AbstractContextManager[None]:
    """OpenCV's thread count set to ``n`` (None: unchanged) for the block, then put back."""
    return _set_for_block(cv2.getNumThreads, cv2.setNumThreads, n)


def gil_switch_interval(seconds: float | None) -> contextlib.AbstractContextManager[None]:
    """Python's thread switch interval set to ``seconds`` (None: unchanged) for the block, then put back.

    A thread that returns from MediaPipe or OpenCV waits for the GIL while another runs Python code,
    up to the switch interval (5 ms by default) each time, several times a frame: a shorter interval
    lets the tracking thread back in at once. The setting is the whole process's."""
    return _set_for_block(sys.getswitchinterval, sys.setswitchinterval, seconds)


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


_END = object()  # end of a prefetched stream


class Prefetched(Generic[T]):
    """``items`` run ahead in a thread of their own, at most ``depth`` items ahead; an exception
    there re-raises in the consumer, in order. A context manager: the thread starts on enter (so
    the caller can set up its own stage meanwhile) and is stopped and joined on exit, before
    whatever it reads from (a source, a tracker) is closed."""

    def __init__(self, items: Iterator[T], depth: int, name: str, nice: int | None = None) -> None:
        self._items = items
        self._nice = nice  # the thread's priority (threads.lower_priority); None: the caller's
        self._q: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._produce, name=name, daemon=True)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        lower_priority(self._nice)
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as e:  # handed to the consumer, which re-raises it
            self._put(e)

    def __enter__(self) -> Prefetched[T]:
        self._worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._worker.join(timeout=2.0)

    def __iter__(self) -> Iterator[T]:
        while (item := self._q.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
