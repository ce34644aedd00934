"""One batch task: export one video and say how it went, never raising for a bad video.

This runs in the main process (``--jobs 1``), in a worker process (``--jobs N``) or in a Ray task,
so it takes and returns only picklable values. Each call builds its own tracker (one per process
at a time); a bad video becomes a ``failed`` result with a one-line reason, so one broken file
never stops the batch.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from pathlib import Path
from typing import Any

from avatar_bridge.batch.inputs import output_stem
from avatar_bridge.batch.manifest import Status, VideoResult
from avatar_bridge.errors import AvatarBridgeError
from avatar_bridge.pipeline.export import ExportOptions, Progress, export_video


def queue_progress(queue: Any, key: str, every: float = 0.5) -> Progress:
    """A progress callback that puts ``(key, done, total)`` on ``queue`` at most every ``every`` s."""
    last = [0.0]

    def report(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] >= every or (total is not None and done >= total):
            last[0] = now
            with contextlib.suppress(Exception):  # progress is best effort; the export must go on
                queue.put_nowait((key, done, total))

    return report


def export_one(
    video: str, outdir: str, options: ExportOptions, progress: Progress | None = None, queue: Any = None
) -> VideoResult:
    """Export ``video`` into ``outdir``; failures are returned as ``Status.FAILED`` with the reason."""
    path = Path(video)
    result = VideoResult(input=video, stem=output_stem(path))
    if progress is None and queue is not None:
        progress = queue_progress(queue, video)
    started = time.perf_counter()
    try:
        summary = export_video(path, outdir, options, progress=progress)
    except AvatarBridgeError as e:
        result.status, result.reason = Status.FAILED, str(e)
    except Exception as e:  # a bug, not a bad video: keep the batch going and keep the evidence
        frame = traceback.extract_tb(e.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        result.status, result.reason = Status.FAILED, f"internal error {type(e).__name__} at {where}: {e}"
    else:
        result.status = Status.DONE
        result.frames, result.frames_with_face = summary.frames, summary.frames_with_face
        result.faces = {str(k): v for k, v in summary.faces.items()}
        result.outputs = [p.name for p in summary.outputs]
        result.warnings = list(summary.warnings)
    result.elapsed_s = round(time.perf_counter() - started, 3)
    return result
