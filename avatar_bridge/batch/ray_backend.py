"""The batch on Ray: each video one Ray task running :func:`export_one` (``--ray ADDRESS``).

Ray is optional (``pip install 'avatar-bridge[cluster]'``). "local" starts a private Ray on this
machine with ``jobs`` CPUs and stops it afterwards; any other address joins an existing cluster,
whose nodes must read the input paths and write the output folder (a shared filesystem) and have
avatar-bridge installed. Workers write the outputs themselves, atomically, as in every other mode.
"""

from __future__ import annotations

from pathlib import Path

from avatar_bridge.batch.inputs import output_stem
from avatar_bridge.batch.manifest import Status, VideoResult
from avatar_bridge.batch.worker import export_one
from avatar_bridge.errors import BackendUnavailableError
from avatar_bridge.pipeline.export import ExportOptions


def _import_ray():  # noqa: ANN202 - the ray module
    try:
        import ray
    except ImportError as e:
        raise BackendUnavailableError(
            "--ray needs Ray: pip install 'avatar-bridge[cluster]' (or pip install ray)"
        ) from e
    return ray


def run_on_ray(todo: list[str], outdir: Path, options: ExportOptions, batch: object, finish) -> None:  # noqa: ANN001
    """Submit one task per video, hand each result to ``finish`` as it completes."""
    ray = _import_ray()
    address: str = batch.ray_address  # type: ignore[attr-defined]
    started_here = not ray.is_initialized()
    if started_here:
        common = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        try:
            if address == "local":
                ray.init(num_cpus=batch.jobs, **common)  # type: ignore[attr-defined]
            else:
                ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ValueError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BackendUnavailableError(f"cannot start or reach Ray at {address!r}: {first}") from e
    try:
        task = ray.remote(num_cpus=1, max_retries=batch.ray_retries)(export_one)  # type: ignore[attr-defined]
        refs = {task.remote(v, str(outdir), options): v for v in todo}
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                for ref in done:
                    video = refs.pop(ref)
                    finish(_get(ray, ref, video))
        except BaseException:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started_here:
            ray.shutdown()


def _get(ray, ref, video: str) -> VideoResult:  # noqa: ANN001
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as e:  # the task's worker or node died, or the task was cancelled
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return VideoResult(video, output_stem(Path(video)), Status.FAILED, f"Ray task failed: {first}")
