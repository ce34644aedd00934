"""Spotted expression events as JSON (``<stem>.events.json``), and back.

One object per event, times in source seconds: kind (micro|macro), face_id, onset, apex, offset,
duration, emitted_at (when the online spotter decided), decision_delay (emitted_at - offset),
aus (AU -> peak intensity), regions, side, magnitude, confidence (the spotter's), label (3-class),
emotion, label_scores (class -> probability when TP-HA3DNet chose the label; {} for the AU rules).
Beside the events: spotter_stats (what was rejected and why), calm_time (per face, the seconds
watched and, per zone, the seconds calm enough for a micro-expression to be reported) and
calm_spans (per face and zone, the [start, end] source times of that calm time).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from avatar_bridge.errors import InputError, OutputError
from avatar_bridge.fileio import read_json
from avatar_bridge.records import EventKind, ExpressionEvent

FORMAT = "avatar-bridge-events"
VERSION = 1


def event_to_dict(e: ExpressionEvent) -> dict[str, object]:
    return {
        "kind": e.kind.value,
        "face_id": e.face_id,
        "onset": round(e.onset, 4),
        "apex": round(e.apex, 4),
        "offset": round(e.offset, 4),
        "duration": round(e.duration, 4),
        "emitted_at": round(e.emitted_at, 4),
        "decision_delay": round(e.emitted_at - e.offset, 4),
        "aus": {k: round(float(v), 3) for k, v in e.aus.items()},
        "regions": list(e.regions),
        "side": e.side,
        "magnitude": round(float(e.magnitude), 4),
        "confidence": round(float(e.confidence), 3),
        "label": e.label,
        "emotion": e.emotion,
        "label_scores": {k: round(float(v), 4) for k, v in e.label_scores.items()},
    }


def events_document(
    source: str,
    events: Iterable[ExpressionEvent],
    stats: Mapping[str, int],
    calm: Mapping[int, Mapping[str, float]] | None = None,
    spans: Mapping[int, Mapping[str, Sequence[tuple[float, float]]]] | None = None,
) -> dict:
    """The whole file: what was spotted, counts of what the spotter rejected and why, and per face
    how long it was watched and calm enough, per zone, for a micro-expression to be reported
    (``calm_time``, seconds; :meth:`MicroSpotter.calm_time`) and when (``calm_spans``;
    :meth:`MicroSpotter.calm_spans`)."""
    evs = [event_to_dict(e) for e in events]
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": source,
        "micro": sum(e["kind"] == EventKind.MICRO.value for e in evs),
        "macro": sum(e["kind"] == EventKind.MACRO.value for e in evs),
        "events": evs,
        "spotter_stats": dict(stats),
        "calm_time": {str(f): {k: round(v, 3) for k, v in d.items()} for f, d in (calm or {}).items()},
        "calm_spans": {
            str(f): {z: [[round(a, 4), round(b, 4)] for a, b in s] for z, s in d.items()}
            for f, d in (spans or {}).items()
        },
    }


def check_overwritable(path: str | Path) -> None:
    """Refuse to replace a file at ``path`` that is not an events file of ours (say, the ground
    truth an older ``avatar-bridge synth`` wrote as ``<name>.events.json``): nothing is lost."""
    path = Path(path)
    if not path.exists():
        return
    try:
        doc = read_json(path, "events file")
    except InputError:
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        what = f"format {doc.get('format')!r}" if isinstance(doc, dict) and "format" in doc else "unreadable"
        raise OutputError(f"{path} exists and is not an avatar-bridge events file ({what}): export would "
                          "overwrite it; choose another --outdir or move it")  # fmt: skip


def read_events(path: str | Path) -> list[ExpressionEvent]:
    """Read ``<stem>.events.json`` back; errors name the file and the event."""
    path = Path(path)
    doc = read_json(path, "events file")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("events"), list):
        raise InputError(f"{path} is not an avatar-bridge events file")
    out = []
    for i, e in enumerate(doc["events"]):
        try:
            out.append(
                ExpressionEvent(
                    kind=EventKind(e["kind"]),
                    face_id=int(e["face_id"]),
                    onset=float(e["onset"]),
                    apex=float(e["apex"]),
                    offset=float(e["offset"]),
                    emitted_at=float(e["emitted_at"]),
                    aus={str(k): float(v) for k, v in dict(e.get("aus", {})).items()},
                    regions=tuple(str(r) for r in e.get("regions", ())),
                    side=str(e.get("side", "both")),
                    magnitude=float(e.get("magnitude", 0.0)),
                    confidence=float(e.get("confidence", 0.0)),
                    label=str(e.get("label", "")),
                    emotion=str(e.get("emotion", "")),
                    label_scores={str(k): float(v) for k, v in dict(e.get("label_scores", {})).items()},
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{path}: event {i} is malformed ({type(err).__name__}: {err})") from err
    return out
