"""Micro-expression classifiers: cost on CPU and leave-one-video-out UF1/UAR on generated data.

- TP-HA3DNet milliseconds per event (one clip, batch 1, 1 thread), eager and TorchScript;
- DCT-LDA milliseconds per face (DCT of the aligned grey face + LDA), on real face crops;
- AU rules milliseconds per event;
- TP-HA3DNet LOSO UF1/UAR on micro-expressions injected into the four face samples (close-ups,
  face 640 px wide), leaving one *recording* out: face_noface.mov and noface_face.mov hold the
  single_face.mp4 clip itself, so there are two subjects (single_face, wolfgang); with two chance
  levels (majority class, uniform guess) measured in the same run.

Run:  .venv/bin/python benchmarks/bench_classifiers.py [--data DIR] [--seeds N] [--epochs N]
Writes benchmarks/results/bench_classifiers.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from avatar_bridge import sample_media
from avatar_bridge.capture import open_source
from avatar_bridge.micro.classify.au_rules import AURuleClassifier
from avatar_bridge.micro.classify.clips import generated_clips
from avatar_bridge.micro.classify.dct_lda import DCTLDA, dct_features, face_image
from avatar_bridge.micro.classify.tp_ha3dnet import TPHA3DNet, TrainOptions, export, load_exported
from avatar_bridge.micro.classify.training import loso_tp_ha3dnet, tensors
from avatar_bridge.micro.synth.cache import FACE_SAMPLES, cache_folder
from avatar_bridge.recording import load_recording

OUT = Path(__file__).resolve().parent / "results" / "bench_classifiers.json"


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=cache_folder(), help="clip cache (reused when present)")
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    results: dict = {"machine": platform.processor() or platform.machine(), "torch_threads": 1}

    clips = generated_clips(args.data, FACE_SAMPLES, list(range(args.seeds)))
    model = TPHA3DNet()
    x = tensors(clips, model.options)
    one = torch.from_numpy(x[:1])
    model.eval()
    with torch.no_grad():
        eager_ms = timed(lambda: model(one), args.repeat)
    path = export(model, Path("/tmp/bench_tp_ha3dnet.pt"))
    scripted = load_exported(path).module
    with torch.no_grad():
        script_ms = timed(lambda: scripted(one), args.repeat)

    frames = list(open_source(sample_media.sample("single_face.mp4")))
    rec = load_recording(sample_media.sample_recording("single_face.mp4"))
    faces = [(f.image, r.faces[0]) for f, r in zip(frames, rec, strict=True) if r.faces]
    greys = [face_image(img, face) for img, face in faces]
    feats = np.array([dct_features(g) for g in greys])
    labels = ["a" if k % 2 else "b" for k in range(len(feats))]  # timing only: any two classes
    dct = DCTLDA.fit(feats, labels)
    k = iter(range(10**9))
    dct_ms = timed(lambda: dct.predict_face(greys[next(k) % len(greys)]), args.repeat * 10)
    align_ms = timed(lambda: face_image(*faces[next(k) % len(faces)]), args.repeat * 10)
    clf = AURuleClassifier()
    au_ms = timed(lambda: clf.classify({"AU06": 0.8, "AU12": 1.6, "AU25": 0.2}), args.repeat * 50)

    results["cost_ms"] = {
        "tp_ha3dnet_eager_per_event": eager_ms,
        "tp_ha3dnet_torchscript_per_event": script_ms,
        "dct_lda_per_face": dct_ms,
        "reference_face_alignment_per_face": align_ms,
        "au_rules_per_event": au_ms,
    }
    counts = {lab: clips.labels.count(lab) for lab in sorted(set(clips.labels))}
    subjects = {s: clips.subjects.count(s) for s in sorted(set(clips.subjects))}
    t0 = time.perf_counter()
    loso, chance = loso_tp_ha3dnet(clips, train_options=TrainOptions(epochs=args.epochs))
    results["loso"] = {"tp_ha3dnet": loso.as_dict(), "chance": chance, "clips": len(clips.clips),
                       "labels": counts, "subjects": subjects, "epochs": args.epochs,
                       "seconds": time.perf_counter() - t0, "problems": clips.problems}  # fmt: skip

    print(f"{'cost (CPU, 1 thread)':40s} {'ms':>8s}")
    for name, ms in results["cost_ms"].items():
        print(f"{name:40s} {ms:8.3f}")
    print(f"\nLOSO on generated data: {len(clips.clips)} clips {counts}, subjects {subjects}")
    print(f"{'method':24s} {'UF1':>6s} {'UAR':>6s} {'acc':>6s}")
    rows = {"TP-HA3DNet": loso.as_dict(), "chance: majority": chance["majority"],
            "chance: uniform": chance["uniform_random"]}  # fmt: skip
    for name, r in rows.items():
        print(f"{name:24s} {r['uf1']:6.3f} {r['uar']:6.3f} {r['accuracy']:6.3f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
