"""DCT-LDA (the MOODSIC paper's recogniser) for ordinary expressions on single frames.

Grey aligned face -> 2D DCT -> the 12 x 12 = 144 lowest-frequency coefficients -> LDA to (at most) 6
dimensions -> an LDA classifier (Gaussian classes with one shared covariance, i.e. nearest class mean
in the whitened LDA space, plus the log prior). NumPy only; about a millisecond per face.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = np.concatenate([rng.normal(m, 1.0, (20, 144)) for m in (0.0, 3.0)])
>>> model = DCTLDA.fit(X, ["neutral"] * 20 + ["happiness"] * 20)
>>> model.predict(X[:1])
['neutral']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from avatar_bridge.errors import InputError, ModelError, OutputError

FORMAT = "avatar-bridge-dct-lda/1"


@dataclass(frozen=True, slots=True)
class DCTLDAOptions:
    """``face_size``: side of the aligned grey face the DCT runs on; ``coefficients``: side of the
    low-frequency block kept (12 -> 144 features); ``dims``: LDA dimensions (capped at classes - 1);
    ``shrinkage``: ridge added to the within-class scatter, as a fraction of its mean variance, so
    that few training faces still give an invertible matrix."""

    face_size: int = 64
    coefficients: int = 12
    dims: int = 6
    shrinkage: float = 0.05


def dct_features(grey_face: np.ndarray, options: DCTLDAOptions | None = None) -> np.ndarray:
    """144 low-frequency DCT coefficients of a grey face image (any size; resized first)."""
    o = options or DCTLDAOptions()
    img = np.asarray(grey_face)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if img.ndim != 2 or min(img.shape) < 2:
        raise InputError(f"a grey face image must be 2-D, got shape {img.shape}")
    f = cv2.resize(img.astype(np.float32), (o.face_size, o.face_size), interpolation=cv2.INTER_AREA)
    f = (f - f.mean()) / (f.std() + 1e-6)  # lighting: zero mean, unit contrast
    c = cv2.dct(f)[: o.coefficients, : o.coefficients]
    return c.reshape(-1).astype(np.float64)


def face_image(frame, face, size: int = 128) -> np.ndarray:
    """The grey aligned face of one tracked face (eyes at fixed positions), via micro.flow."""
    from avatar_bridge.micro.flow import aligned_face

    return cv2.cvtColor(aligned_face(frame, face, size), cv2.COLOR_RGB2GRAY)


@dataclass
class DCTLDA:
    """A fitted model: feature standardisation, LDA projection, class means in LDA space, priors."""

    classes: tuple[str, ...]
    mean: np.ndarray  # (F,) feature mean
    scale: np.ndarray  # (F,) feature std
    projection: np.ndarray  # (F, D), whitening: the shared within-class covariance is identity
    centroids: np.ndarray  # (K, D)
    log_prior: np.ndarray  # (K,)
    options: DCTLDAOptions

    @classmethod
    def fit(cls, features: np.ndarray, labels: Sequence[str], options: DCTLDAOptions | None = None) -> DCTLDA:
        """Fit on (N, F) features; needs at least two classes."""
        o = options or DCTLDAOptions()
        X = np.asarray(features, dtype=np.float64)
        if X.ndim != 2 or len(X) != len(labels):
            raise InputError(f"features must be (N, F) with N = {len(labels)} labels, got {X.shape}")
        classes = tuple(sorted(set(labels)))
        if len(classes) < 2:
            raise InputError(f"DCT-LDA needs at least two classes, got {list(classes)}")
        y = np.array([classes.index(lab) for lab in labels])
        mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-9
        Z = (X - mean) / scale
        mu = np.stack([Z[y == k].mean(axis=0) for k in range(len(classes))])
        within = sum(((Z[y == k] - mu[k]).T @ (Z[y == k] - mu[k])) for k in range(len(classes))) / len(Z)
        within = within + o.shrinkage * max(np.trace(within) / len(within), 1e-6) * np.eye(len(within))
        prior = np.bincount(y, minlength=len(classes)) / len(y)
        between = (mu - Z.mean(axis=0)).T @ np.diag(prior) @ (mu - Z.mean(axis=0))
        # whiten by the within-class scatter, then the principal axes of the between-class scatter
        evals, evecs = np.linalg.eigh(within)
        w_inv_sqrt = evecs @ np.diag(1.0 / np.sqrt(np.maximum(evals, 1e-12))) @ evecs.T
        b_evals, b_evecs = np.linalg.eigh(w_inv_sqrt @ between @ w_inv_sqrt)
        dims = min(o.dims, len(classes) - 1)
        projection = w_inv_sqrt @ b_evecs[:, ::-1][:, :dims]
        return cls(classes, mean, scale, projection, mu @ projection, np.log(prior), o)

    def transform(self, features: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N, D) LDA coordinates."""
        return ((np.atleast_2d(features) - self.mean) / self.scale) @ self.projection

    def decision(self, features: np.ndarray) -> np.ndarray:
        """(N, K) log-posteriors up to a constant (shared unit covariance in LDA space)."""
        z = self.transform(features)
        d2 = ((z[:, None, :] - self.centroids[None]) ** 2).sum(axis=2)
        return -0.5 * d2 + self.log_prior

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        s = self.decision(features)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> list[str]:
        return [self.classes[k] for k in self.decision(features).argmax(axis=1)]

    def predict_face(self, grey_face: np.ndarray) -> str:
        """Label of one grey face image."""
        return self.predict(dct_features(grey_face, self.options))[0]

    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        """Write an .npz (arrays + JSON header); temp file then rename."""
        path = Path(path)
        header = {"format": FORMAT, "classes": list(self.classes), "options": _opts(self.options),
                  "meta": meta or {}}  # fmt: skip
        tmp = path.with_name(path.name + ".part.npz")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(
                tmp,
                header=np.array(json.dumps(header)),
                mean=self.mean,
                scale=self.scale,
                projection=self.projection,
                centroids=self.centroids,
                log_prior=self.log_prior,
            )
            tmp.replace(path)
        except OSError as e:
            raise OutputError(f"cannot write DCT-LDA model {path}: {e}") from e
        return path

    @classmethod
    def load(cls, path: str | Path) -> DCTLDA:
        path = Path(path)
        if not path.is_file():
            raise ModelError(
                f"DCT-LDA model not found: {path} (train one with 'avatar-bridge train dct-lda')"
            )
        try:
            with np.load(path) as z:
                header = json.loads(str(z["header"]))
                arrays = {k: z[k] for k in ("mean", "scale", "projection", "centroids", "log_prior")}
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"{path} is not a DCT-LDA model: {e}") from e
        if header.get("format") != FORMAT:
            raise ModelError(f"{path} is not a DCT-LDA model (format {header.get('format')!r})")
        return cls(tuple(header["classes"]), options=DCTLDAOptions(**header["options"]), **arrays)


def _opts(o: DCTLDAOptions) -> dict:
    return {k: getattr(o, k) for k in DCTLDAOptions.__slots__}
