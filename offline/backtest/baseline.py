"""The batch baseline of the original plan: a tree ensemble retrained offline on a schedule.

Before Kuntur, the plan was a scikit-learn RandomForest (or XGBoost) retrained every week
on the last few weeks of labelled history, with class weights or SMOTE (imbalanced-learn's)
for the imbalance and a small grid search. :func:`run_baseline` replays that plan
*prequentially* on the feature vectors the streaming pipeline computed, under the online
model's label-arrival rule, so ``kuntur evaluate`` can put both in one table:

* retrain points ``T = ts[0] + every, ts[0] + 2 * every, ...``;
* the model trained at ``T`` sees rows with ``T - window <= ts < T`` whose label is known
  by ``T`` (``known_at <= T``) — never a label from the future;
* it scores rows with ``T <= ts < T_next``; rows before the first model score 0.0.

scikit-learn, imbalanced-learn (and xgboost) are optional (``pip install 'kuntur[eval]'``):
they are imported only when a baseline runs, and their absence raises
:class:`BaselineUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from offline.backtest.metrics import average_precision
from offline.errors import BaselineUnavailable, UnknownBaselineError

__all__ = ["BASELINES", "BaselineResult", "require_baseline", "require_smote", "run_baseline", "smote_oversample"]

BASELINES = ("random-forest", "xgboost", "balanced-bagging")

_GRIDS: dict[str, list[dict[str, Any]]] = {
    "random-forest": [{"max_depth": d, "min_samples_leaf": leaf} for d in (8, 16) for leaf in (1, 10)],
    "xgboost": [{"max_depth": d, "min_child_weight": w} for d in (4, 8) for w in (1, 10)],
    "balanced-bagging": [{"max_depth": d, "min_samples_leaf": leaf} for d in (8, 16) for leaf in (1, 10)],
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "random-forest": {"max_depth": 16, "min_samples_leaf": 10},
    "xgboost": {"max_depth": 6, "min_child_weight": 1},
    "balanced-bagging": {"max_depth": 16, "min_samples_leaf": 1},
}
_VALIDATION_SHARE = 0.2
_MIN_SEARCH_FRAUDS = 5  # per part of the search split; fewer cannot rank the grid
_SCORE_CHUNK = 65536
_EVAL_EXTRA = "pip install 'kuntur[eval]'"


@dataclass
class BaselineResult:
    """Scores of a baseline run plus what it trained, for the report and the JSON summary."""

    scores: np.ndarray  # float64 per row, in the caller's row order; 0.0 where no model existed yet
    retrains: list[dict[str, Any]] = field(default_factory=list)
    feature_importances: np.ndarray | None = None  # mean over the fitted models, one value per column
    params: dict[str, Any] = field(default_factory=dict)


def _classifier_factory(kind: str, n_estimators: int, n_jobs: int, seed: int) -> Callable[..., Any]:
    """``make(params, pos_weight) -> unfitted classifier`` for ``kind``; imports the library lazily."""
    if kind == "random-forest":
        try:
            from sklearn.ensemble import RandomForestClassifier
        except ImportError as exc:
            raise BaselineUnavailable(f"the random-forest baseline needs scikit-learn: {_EVAL_EXTRA}") from exc

        def make_rf(params: dict[str, Any], pos_weight: float) -> Any:
            return RandomForestClassifier(
                n_estimators=n_estimators,
                max_features="sqrt",
                class_weight="balanced_subsample",
                n_jobs=n_jobs,
                random_state=seed,
                **params,
            )

        return make_rf
    if kind == "xgboost":
        try:
            from xgboost import XGBClassifier
        except ImportError as exc:
            raise BaselineUnavailable(
                f"the xgboost baseline needs the xgboost package, which is not installed: pip install xgboost "
                f"(and {_EVAL_EXTRA})"
            ) from exc

        def make_xgb(params: dict[str, Any], pos_weight: float) -> Any:
            return XGBClassifier(
                n_estimators=n_estimators,
                learning_rate=0.1,
                tree_method="hist",
                scale_pos_weight=pos_weight,
                eval_metric="aucpr",
                n_jobs=n_jobs,
                random_state=seed,
                **params,
            )

        return make_xgb
    if kind == "balanced-bagging":
        try:
            from imblearn.ensemble import BalancedBaggingClassifier
            from sklearn.tree import DecisionTreeClassifier
        except ImportError as exc:
            raise BaselineUnavailable(f"the balanced-bagging baseline needs imbalanced-learn: {_EVAL_EXTRA}") from exc

        def make_bb(params: dict[str, Any], pos_weight: float) -> Any:
            # each tree learns from all frauds and as many genuine rows drawn at random
            return BalancedBaggingClassifier(
                estimator=DecisionTreeClassifier(**params),
                n_estimators=n_estimators,
                sampling_strategy="auto",
                replacement=False,
                bootstrap=False,  # every tree sees all its balanced sample: both classes
                n_jobs=1,  # small trees; in this process, so its CPU time is measured
                random_state=seed,
            )

        return make_bb
    raise UnknownBaselineError(f"unknown baseline {kind!r}; choose one of: {', '.join(BASELINES)}")


def require_baseline(kind: str) -> None:
    """Fail fast — before a long streaming run — if ``kind`` is unknown or its library is missing.

    Raises :class:`UnknownBaselineError` or :class:`BaselineUnavailable`.
    """
    _classifier_factory(kind, 1, 1, 0)


def require_smote() -> None:
    """Fail fast — at argument parsing, before a long streaming run — if SMOTE cannot run.

    Raises :class:`BaselineUnavailable` when imbalanced-learn is not installed.
    """
    try:
        import imblearn.over_sampling  # noqa: F401
    except ImportError as exc:
        raise BaselineUnavailable(f"--smote needs imbalanced-learn: {_EVAL_EXTRA}") from exc


def smote_oversample(
    X: np.ndarray, y: np.ndarray, rng: np.random.Generator, ratio: float = 1.0, k: int = 5, n_jobs: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic Minority Over-sampling (Chawla et al., 2002), by imbalanced-learn's ``SMOTE``.

    Adds synthetic frauds until frauds / genuine = ``ratio``: each one lies at a random point
    on the segment between a real fraud and one of its ``k`` nearest fraud neighbours.
    Neighbours are searched on standardised columns (SMOTE runs on ``X / scale`` and the
    synthetic rows are scaled back), so a large-valued feature (an amount) does not decide
    alone who is near whom. Returns the training set with the synthetic rows appended;
    unchanged if there are fewer than two frauds or already enough.
    """
    try:
        from imblearn.over_sampling import SMOTE
        from sklearn.neighbors import NearestNeighbors
    except ImportError as exc:
        raise BaselineUnavailable(f"SMOTE needs imbalanced-learn and scikit-learn: {_EVAL_EXTRA}") from exc
    pos = X[y]
    m = len(pos)
    n_new = int(ratio * (len(y) - m)) - m
    if m < 2 or n_new <= 0:
        return X, y
    scale = pos.std(axis=0)
    scale[scale == 0] = 1.0
    neighbours = NearestNeighbors(n_neighbors=min(k, m - 1) + 1, n_jobs=n_jobs)
    smote = SMOTE(sampling_strategy=ratio, k_neighbors=neighbours, random_state=int(rng.integers(2**31 - 1)))
    resampled, _ = smote.fit_resample(X / scale, y)
    synthetic = (resampled[len(X) :] * scale).astype(X.dtype, copy=False)
    return np.vstack([X, synthetic]), np.concatenate([y, np.ones(len(synthetic), dtype=bool)])


def _fit(
    make: Callable[..., Any],
    params: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    use_smote: bool,
    rng: np.random.Generator,
    n_jobs: int,
) -> tuple[Any, int]:
    """Fit one model; returns it and the number of synthetic rows SMOTE added."""
    n = len(y)
    if use_smote:
        X, y = smote_oversample(X, y, rng, n_jobs=n_jobs)
    positives = int(np.count_nonzero(y))
    model = make(params, (len(y) - positives) / max(positives, 1))
    model.fit(X, y)
    return model, len(y) - n


def _predict(model: Any, X: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_proba(X)[:, 1], dtype=np.float64)


def _search(
    make: Callable[..., Any],
    kind: str,
    X: np.ndarray,
    y: np.ndarray,
    use_smote: bool,
    rng: np.random.Generator,
    n_jobs: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """Pick the grid point with the best average precision on the latest 20 % of the window.

    Rows are in event-time order, so the split is a forward one (fit on the past, judge on
    what followed). ``None`` when either part has too few frauds or no genuine row to judge by.
    """
    cut = int(len(y) * (1.0 - _VALIDATION_SHARE))
    fit_y, val_y = y[:cut], y[cut:]
    for part in (fit_y, val_y):
        frauds = int(np.count_nonzero(part))
        if frauds < _MIN_SEARCH_FRAUDS or frauds == len(part):
            return None
    trials: list[dict[str, Any]] = []
    for params in _GRIDS[kind]:
        began = time.perf_counter()
        model, _ = _fit(make, params, X[:cut], fit_y, use_smote, rng, n_jobs)
        ap = average_precision(val_y, _predict(model, X[cut:]))
        trials.append({"params": params, "average_precision": ap, "fit_seconds": time.perf_counter() - began})
    best = max(trials, key=lambda trial: float(trial["average_precision"]))
    return dict(best["params"]), trials


def run_baseline(
    X: np.ndarray,
    ts: np.ndarray,
    train_y: np.ndarray,
    known_at: np.ndarray,
    kind: str = "random-forest",
    retrain_every_s: float = 7 * 86400,
    train_window_s: float = 28 * 86400,
    smote: bool = False,
    search: bool = True,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    *,
    n_estimators: int = 100,
    n_jobs: int = -1,
    max_train_rows: int | None = None,
) -> BaselineResult:
    """Replay the scheduled batch retraining over a history and score every row.

    ``X`` (n x d) holds the features the stream computed for each transaction at score
    time; ``ts`` its event time; ``train_y`` the label a learner would get (bool) and
    ``known_at`` the event time from which it is known (``np.inf``: never). ``progress``
    is called with the number of rows finished since its previous call (e.g. a progress
    bar's ``update``).

    The hyperparameters are searched once, at the first retrain whose window holds enough
    frauds to rank the grid (5 in each part of an 80/20 time split), and reused afterwards;
    earlier retrains use the defaults; ``search=False`` keeps the defaults throughout. A
    retrain whose window lacks a class keeps the previous model in service (a failed batch
    job does not withdraw the deployed model); until a first model exists, rows score 0.0.
    ``retrains`` records, per retrain point, the training set's time bounds and the latest
    label arrival it used, so the no-leakage rule can be audited. ``max_train_rows`` caps
    the genuine rows of a training set (a uniform sample of them, every fraud kept), so a
    batch model of a multi-million-row history trains in minutes.
    """
    if retrain_every_s <= 0 or train_window_s <= 0:
        raise ValueError("retrain_every_s and train_window_s must be > 0")
    make = _classifier_factory(kind, n_estimators, n_jobs, seed)
    X = np.asarray(X, dtype=np.float32)
    t_in = np.asarray(ts, dtype=np.float64)
    n = len(t_in)
    if X.ndim != 2 or len(X) != n or len(train_y) != n or len(known_at) != n:
        raise ValueError(f"X must be n x d and ts, train_y, known_at of length n (n = {n})")
    y = np.asarray(train_y, dtype=bool)
    known = np.asarray(known_at, dtype=np.float64)
    t = t_in
    order: np.ndarray | None = None
    if n and np.any(np.diff(t_in) < 0):
        order = np.argsort(t_in, kind="stable")
        t, X, y, known = t_in[order], X[order], y[order], known[order]
    if not np.isfinite(X).all():
        big = float(np.finfo(np.float32).max)
        X = np.nan_to_num(X, nan=0.0, posinf=big, neginf=-big)
    rng = np.random.default_rng(seed)
    use_smote = smote
    scores = np.zeros(n, dtype=np.float64)
    retrains: list[dict[str, Any]] = []
    importances: list[np.ndarray] = []
    params = dict(_DEFAULTS[kind])
    searched = not search
    trials: list[dict[str, Any]] = []
    model: Any = None

    def report(rows: int) -> None:
        if progress is not None and rows:
            progress(rows)

    count = int((t[-1] - t[0]) // retrain_every_s) if n else 0
    points = [float(t[0] + retrain_every_s * (j + 1)) for j in range(count)]
    report(int(np.searchsorted(t, points[0], "left")) if points else n)
    for j, T in enumerate(points):
        T_next = points[j + 1] if j + 1 < len(points) else np.inf
        lo, hi = (int(i) for i in np.searchsorted(t, [T - train_window_s, T], "left"))
        idx = lo + np.flatnonzero(known[lo:hi] <= T)
        if max_train_rows is not None and len(idx) > max_train_rows:
            genuine = idx[~y[idx]]
            if len(genuine) > max_train_rows:
                sample = rng.choice(genuine, max_train_rows, replace=False)
                idx = np.sort(np.concatenate([idx[y[idx]], sample]))
        positives = int(np.count_nonzero(y[idx]))
        record: dict[str, Any] = {
            "time": T,
            "window_start": T - train_window_s,
            "rows": len(idx),
            "positives": positives,
            "train_start": float(t[idx[0]]) if len(idx) else None,
            "train_end": float(t[idx[-1]]) if len(idx) else None,
            "max_known_at": float(known[idx].max()) if len(idx) else None,
        }
        if 0 < positives < len(idx):
            if not searched and (found := _search(make, kind, X[idx], y[idx], use_smote, rng, n_jobs)) is not None:
                params, trials = found
                searched = True
                record["searched"] = True
            began = time.perf_counter()
            model, synthetic = _fit(make, params, X[idx], y[idx], use_smote, rng, n_jobs)
            record.update(model="fitted", params=dict(params), synthetic=synthetic)
            record["fit_seconds"] = time.perf_counter() - began
            if getattr(model, "feature_importances_", None) is not None:
                importances.append(np.asarray(model.feature_importances_, dtype=np.float64))
        else:
            record.update(model="kept previous" if model is not None else "none", fit_seconds=0.0)
        s_hi = int(np.searchsorted(t, T_next, "left")) if np.isfinite(T_next) else n
        record.update(score_start=T, score_end=T_next, scored_rows=s_hi - hi)
        for c in range(hi, s_hi, _SCORE_CHUNK):
            c_hi = min(c + _SCORE_CHUNK, s_hi)
            if model is not None:
                scores[c:c_hi] = _predict(model, X[c:c_hi])
            report(c_hi - c)
        retrains.append(record)

    if order is not None:
        unsorted = np.empty(n, dtype=np.float64)
        unsorted[order] = scores
        scores = unsorted
    return BaselineResult(
        scores=scores,
        retrains=retrains,
        feature_importances=np.mean(importances, axis=0) if importances else None,
        params={
            "kind": kind,
            **params,
            "n_estimators": n_estimators,
            "imbalance": {"xgboost": "scale_pos_weight", "balanced-bagging": "balanced under-sampling per tree"}.get(
                kind, "class_weight=balanced_subsample"
            ),
            "max_train_rows": max_train_rows,
            "smote": use_smote,
            "retrain_every_s": retrain_every_s,
            "train_window_s": train_window_s,
            "search": trials,
        },
    )
