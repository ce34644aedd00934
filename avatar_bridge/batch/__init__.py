"""Batch export: many videos, in parallel processes or on Ray, resumable, with a manifest."""

from avatar_bridge.batch.inputs import expand_inputs, is_single_input
from avatar_bridge.batch.manifest import MANIFEST_NAME, Status, VideoResult, incomplete_reason
from avatar_bridge.batch.runner import BatchOptions, BatchReport, run_batch

__all__ = [
    "MANIFEST_NAME",
    "BatchOptions",
    "BatchReport",
    "Status",
    "VideoResult",
    "expand_inputs",
    "incomplete_reason",
    "is_single_input",
    "run_batch",
]
