"""Run many exports: in this process, in N worker processes, or as Ray tasks; resumable.

Before any work, each video's outputs are checked (:func:`incomplete_reason`): complete ones are
skipped, temporaries an interrupted run left behind are removed. Each video is one task that writes
its own outputs atomically, so stopping a batch at any moment loses at most the videos in flight,
and the next run picks up from there.
"""

from __future__ import annotations

import json
import multiprocessing
import queue as queue_mod
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from avatar_bridge.batch.inputs import check_stems, output_stem
from avatar_bridge.batch.manifest import Manifest, Status, VideoResult, incomplete_reason, remove_stale_parts
from avatar_bridge.batch.worker import export_one
from avatar_bridge.errors import InputError
from avatar_bridge.export.atomic import ensure_writable_dir
from avatar_bridge.pipeline.export import ExportOptions, _jsonable

OnResult = Callable[[VideoResult], None]
OnProgress = Callable[[str, int, int | None], None]


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """How a batch runs.

    jobs: worker processes (1 = in this process); with ``ray_address="local"`` the CPUs Ray may use.
    ray_address: None = no Ray; "local" = start a private Ray on this machine; "auto" or
    "ray://host:10001" = an existing cluster (every node must read the inputs and write ``outdir``,
    e.g. a shared filesystem, and have avatar-bridge installed). force: redo complete videos too.
    manifest_interval: least seconds between two rewrites of manifest.json (it is always flushed at
    the end). ray_retries: times Ray reruns a task whose worker or node died.
    """

    jobs: int = 1
    ray_address: str | None = None
    force: bool = False
    manifest_interval: float = 1.0
    ray_retries: int = 1

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise InputError(f"jobs must be 1 or more, got {self.jobs}")


@dataclass(slots=True)
class BatchReport:
    """Every video's result (in input order), where the manifest is, and the wall time."""

    results: list[VideoResult]
    manifest: Path
    elapsed: float
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = {s.value: sum(r.status == s for r in self.results) for s in Status}

    @property
    def failed(self) -> list[VideoResult]:
        return [r for r in self.results if r.status == Status.FAILED]

    @property
    def frames_exported(self) -> int:
        return sum(r.frames for r in self.results if r.status == Status.DONE)


def _skipped(video: Path, stem: str, outdir: Path) -> VideoResult:
    """A result for complete outputs, with the numbers read back from their JSON."""
    meta = json.loads((outdir / f"{stem}.json").read_text())
    faces = {str(f["face_id"]): int(f["frames"]) for f in meta.get("faces", [])}
    return VideoResult(str(video), stem, Status.SKIPPED, "complete outputs from an earlier run",
                       int(meta["frame_count"]), int(meta.get("frames_with_face", 0)), faces,
                       list(meta["outputs"]), list(meta.get("warnings", [])))  # fmt: skip


def run_batch(
    videos: list[Path],
    outdir: str | Path,
    options: ExportOptions | None = None,
    batch: BatchOptions | None = None,
    on_result: OnResult | None = None,
    on_progress: OnProgress | None = None,
) -> BatchReport:
    """Export every video of ``videos`` into ``outdir``; returns every result, never raises for one video."""
    options, batch = options or ExportOptions(), batch or BatchOptions()
    started = time.perf_counter()
    outdir = ensure_writable_dir(Path(outdir))
    videos = [v.resolve() for v in videos]
    check_stems(videos)
    settings = _jsonable(options)
    manifest = Manifest(outdir, settings, batch.manifest_interval)
    results: dict[str, VideoResult] = {}
    todo: list[str] = []
    for v in videos:
        stem = output_stem(v)
        why = None if batch.force else incomplete_reason(outdir, v, stem, settings)
        if why is None and not batch.force:
            results[str(v)] = _skipped(v, stem, outdir)
        else:
            results[str(v)] = VideoResult(str(v), stem, Status.PENDING, why or "forced")
            todo.append(str(v))
    remove_stale_parts(outdir, {r.stem for r in results.values()})  # no task runs yet
    for r in results.values():
        manifest.entries[r.input] = r.to_json()
    manifest.flush()
    for r in results.values():
        if r.status == Status.SKIPPED and on_result is not None:
            on_result(r)

    def finish(result: VideoResult) -> None:
        results[result.input] = result
        manifest.record(result)
        if on_result is not None:
            on_result(result)

    try:
        if not todo:
            pass
        elif batch.ray_address is not None:
            from avatar_bridge.batch.ray_backend import run_on_ray

            run_on_ray(todo, outdir, options, batch, finish)
        elif batch.jobs == 1 or len(todo) == 1:
            for video in todo:
                progress = (lambda d, t, v=video: on_progress(v, d, t)) if on_progress else None
                finish(export_one(video, str(outdir), options, progress=progress))
        else:
            _run_processes(todo, outdir, options, batch.jobs, finish, on_progress)
    finally:
        unfinished = {r.stem for r in results.values() if r.status == Status.PENDING}
        remove_stale_parts(outdir, unfinished)  # an interrupted task's temporaries
        manifest.flush()
    return BatchReport([results[str(v)] for v in videos], manifest.path, time.perf_counter() - started)


def _run_processes(
    todo: list[str], outdir: Path, options: ExportOptions, jobs: int, finish: OnResult,
    on_progress: OnProgress | None,
) -> None:  # fmt: skip
    """One task per video on a pool of ``jobs`` spawned processes (MediaPipe is not fork-safe)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        progress_q = manager.Queue() if on_progress else None
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx)
        futures: dict[Future[VideoResult], str] = {
            pool.submit(export_one, v, str(outdir), options, None, progress_q): v for v in todo
        }
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress_q, on_progress)
                for fut in done:
                    finish(_result_of(fut, futures[fut]))
            pool.shutdown(wait=True)
        except BaseException:
            # Ctrl-C or an error here: stop now; the workers' half-done outputs are temporaries.
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _result_of(fut: Future[VideoResult], video: str) -> VideoResult:
    try:
        return fut.result()
    except BrokenProcessPool as e:  # a worker died (out of memory, a crash in native code)
        reason = f"worker process died ({e}); rerun to retry"
    except Exception as e:  # noqa: BLE001 - reported per video, the batch goes on
        reason = f"internal error {type(e).__name__}: {e}"
    return VideoResult(video, output_stem(Path(video)), Status.FAILED, reason)


def _drain(progress_q: object, on_progress: OnProgress | None) -> None:
    if progress_q is None or on_progress is None:
        return
    while True:
        try:
            video, done, total = progress_q.get_nowait()  # type: ignore[attr-defined]
        except (queue_mod.Empty, EOFError, OSError):
            return
        on_progress(video, done, total)
