"""The fraud model the worker and the evaluator score with: a River classifier plus the
identity an alert needs (name, generation, counters) and per-alert explanations.

A score comes back as a :class:`Scoring`, which carries what explaining it needs, so an
alert is explained from the very pass that scored it (:meth:`FraudModel.explain`).

>>> model = FraudModel("logreg", feature_names=["a", "b"])
>>> model.version
'logreg.g0'
>>> for _ in range(300):
...     model.learn_one({"a": 4.0, "b": 0.0}, True)
...     model.learn_one({"a": 0.0, "b": 0.0}, False)
>>> model.score_one({"a": 4.0, "b": 0.0}) > 0.9
True
>>> scoring = model.forward_one({"a": 4.0, "b": 0.0})
>>> model.explain(scoring, {"a": 4.0, "b": 0.0})[0].feature
'a'
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import base, compose, linear_model, preprocessing

from models.linear import FastLogisticRegression, Forward
from models.registry import DEFAULT_MODEL, ESTIMATOR_CLASSES, build

__all__ = ["FraudModel", "Reason", "Scoring"]

_BASELINE_MEMORY = 10_000  # explanation baseline: exact mean, then EW over ~this many


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a transaction scored high. ``contribution`` is signed, larger pushes towards
    fraud: log-odds (``weight * standardised value``) for linear models, the drop in
    fraud probability when the feature is replaced by its running mean for the others."""

    feature: str
    value: float
    contribution: float


@dataclass(slots=True)  # not frozen: see models.linear.Forward
class Scoring:
    """One forward pass of a :class:`FraudModel` (read-only): the score in [0, 1] and, for
    the numpy estimators, their :class:`~models.linear.Forward` (what an exact explanation
    needs)."""

    score: float
    forward: Forward | None = None


def _clamp(p: float) -> float:
    return 0.0 if p != p else min(1.0, max(0.0, p))


def _unwrap(estimator: Any) -> Any:
    while isinstance(estimator, base.Wrapper):
        estimator = estimator._wrapped_model
    return estimator


def _linear_explainer(estimator: Any) -> Any:
    """The estimator (or River pipeline) that can split its log-odds exactly, or ``None``."""
    inner = _unwrap(estimator)
    if callable(getattr(inner, "contributions_one", None)):
        return inner
    if (
        isinstance(inner, compose.Pipeline)
        and len(inner) == 2
        and isinstance(inner[0], preprocessing.StandardScaler)
        and isinstance(inner[1], linear_model.LogisticRegression)
    ):
        return inner
    return None


class FraudModel:
    """A named, versioned online fraud classifier.

    Parameters
    ----------
    name
        Candidate name (:data:`models.registry.CANDIDATES`); builds the estimator when
        ``estimator`` is not given.
    feature_names
        The feature columns the model is fed, in extraction order. Checkpoints record
        them so a model is never fed columns it was not trained on.
    generation
        Checkpoint generation; :attr:`version` names it in every alert.
    examples_seen
        Number of labelled examples learned so far.
    created
        Epoch seconds when the model started learning (``None``: now).
    estimator
        A River classifier to use instead of ``build(name)``.
    """

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        feature_names: Sequence[str] = (),
        generation: int = 0,
        examples_seen: int = 0,
        created: float | None = None,
        estimator: base.Classifier | None = None,
    ) -> None:
        self.name = name
        self.feature_names = feature_names
        self.generation = generation
        self.examples_seen = examples_seen
        self.frauds_seen = 0
        self.created = time.time() if created is None else created
        # typed loosely: River annotates features as dict[Hashable, Any]
        self.estimator: Any = build(name) if estimator is None else estimator
        self._built = estimator is None
        self._fast = isinstance(self.estimator, FastLogisticRegression)
        self._linear = _linear_explainer(self.estimator)
        # running means of the features, the baseline of perturbation explanations
        self._baseline: dict[str, list[float]] = {}

    @property
    def version(self) -> str:
        """``<name>.g<generation>``: changes only when a checkpoint is written."""
        return f"{self.name}.g{self.generation}"

    def clone(self) -> FraudModel:
        """An unfitted model with the same name, columns and estimator parameters."""
        # rebuilt by name when possible: some River models rewrite parameters as they learn
        estimator = None if self._built else self.estimator.clone()
        return FraudModel(self.name, self.feature_names, estimator=estimator)

    def __repr__(self) -> str:
        return (f"FraudModel(name={self.name!r}, version={self.version!r}, "
                f"examples_seen={self.examples_seen}, frauds_seen={self.frauds_seen})")

    # -- state (checkpoints) ---------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Identity, counters and explanation baseline as plain values and arrays, with the
        estimator's own :meth:`~models.linear.FastLogisticRegression.state_dict` when it is
        one of :data:`~models.registry.ESTIMATOR_CLASSES` (``"estimator_class"`` is
        ``None`` otherwise: only pickle captures it, see :mod:`models.checkpoint`)."""
        est = self.estimator
        own = type(est).__name__ if ESTIMATOR_CLASSES.get(type(est).__name__) is type(est) else None
        names = list(self._baseline)
        return {
            "name": self.name,
            "feature_names": list(self.feature_names),
            "generation": self.generation,
            "examples_seen": self.examples_seen,
            "frauds_seen": self.frauds_seen,
            "created": np.array([self.created]),
            "built": self._built,
            "baseline_names": names,
            "baseline": np.array([self._baseline[k] for k in names], dtype=np.float64).reshape(-1, 2),
            "estimator_class": own,
            "estimator": est.state_dict() if own is not None else None,
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        estimator: base.Classifier | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> FraudModel:
        """The model a :meth:`state_dict` describes. ``estimator``: the restored estimator
        when the state has none of its own; ``feature_names``: the caller's columns (already
        checked equal to the state's), kept as given."""
        own = state["estimator_class"]
        if own is not None:
            est_cls = ESTIMATOR_CLASSES.get(own)
            if est_cls is None:
                raise ValueError(f"unknown estimator class {own!r}")
            estimator = est_cls.from_state(state["estimator"])
        elif estimator is None:
            raise ValueError(f"model {state['name']!r} has no estimator state of its own")
        names = list(state["feature_names"]) if feature_names is None else feature_names
        (created,) = np.asarray(state["created"], dtype=np.float64).tolist()
        model = cls(str(state["name"]), names, generation=int(state["generation"]),
                    examples_seen=int(state["examples_seen"]), created=created, estimator=estimator)
        model.frauds_seen = int(state["frauds_seen"])
        model._built = bool(state["built"])
        baseline = np.asarray(state["baseline"], dtype=np.float64).reshape(-1, 2).tolist()
        model._baseline = dict(zip(map(str, state["baseline_names"]), baseline, strict=True))
        return model

    # -- scoring and learning -------------------------------------------------------------

    def score_one(self, x: Mapping[str, float]) -> float:
        """Fraud probability in [0, 1]. Before any learning this is the estimator's prior
        (well below 0.5 for every candidate: fraud is rare)."""
        if self._fast:
            p = self.estimator.proba_one(x)
        else:
            p = self.estimator.predict_proba_one(x).get(True, 0.0)
        return p if 0.0 <= p <= 1.0 else _clamp(p)

    def predict_proba_one(self, x: Mapping[str, float]) -> dict[bool, float]:
        p = self.score_one(x)
        return {False: 1.0 - p, True: p}

    def forward_one(self, x: Mapping[str, float]) -> Scoring:
        """:meth:`score_one`, with what :meth:`explain` needs to explain the score."""
        if self._fast:
            forward = self.estimator.forward_one(x)
            p = forward.proba
            return Scoring(p if 0.0 <= p <= 1.0 else _clamp(p), forward)
        return Scoring(self.score_one(x))

    def learn_one(self, x: Mapping[str, float], y: bool) -> None:
        y = bool(y)
        self.estimator.learn_one(x, y)
        self.examples_seen += 1
        if y:
            self.frauds_seen += 1
        if self._linear is None:
            self._update_baseline(x)

    # -- array fast path, used by the detector when the estimator supports it -------------

    @property
    def accepts_rows(self) -> bool:
        """Whether :meth:`score_row`/:meth:`learn_row` skip the feature dict entirely."""
        return self._fast

    def score_row(
        self, row: np.ndarray, names: tuple[str, ...], x: Mapping[str, float]
    ) -> float:
        """:meth:`score_one` given ``x`` also as a float64 ``row`` in ``names`` order."""
        if self._fast:
            p = self.estimator.proba_row(row, names)
            return p if 0.0 <= p <= 1.0 else _clamp(p)
        return self.score_one(x)

    def forward_row(
        self, row: np.ndarray, names: tuple[str, ...], x: Mapping[str, float]
    ) -> Scoring:
        """:meth:`forward_one` given ``x`` also as a float64 ``row`` in ``names`` order."""
        if self._fast:
            forward = self.estimator.forward_row(row, names)
            p = forward.proba
            return Scoring(p if 0.0 <= p <= 1.0 else _clamp(p), forward)
        return Scoring(self.score_one(x))

    def learn_row(self, row: np.ndarray, names: tuple[str, ...], y: bool) -> None:
        """:meth:`learn_one` from a float64 ``row`` in ``names`` order (NaN = missing)."""
        if not self._fast:
            self.learn_one({k: v for k, v in zip(names, row.tolist(), strict=True) if v == v}, y)
            return
        y = bool(y)
        self.estimator.learn_row(row, names, y)
        self.examples_seen += 1
        if y:
            self.frauds_seen += 1

    def _update_baseline(self, x: Mapping[str, float]) -> None:
        baseline = self._baseline
        for k, v in x.items():
            s = baseline.get(k)
            if s is None:
                baseline[k] = [1.0, float(v)]
            else:
                n = s[0] + 1.0 if s[0] < _BASELINE_MEMORY else s[0]
                s[0] = n
                s[1] += (v - s[1]) / n

    # -- explanations ----------------------------------------------------------------------

    def explain_one(self, x: Mapping[str, float], top: int = 3) -> list[Reason]:
        """:meth:`explain` of a fresh forward pass on ``x``."""
        return self.explain(self.forward_one(x), x, top)

    def explain(self, scoring: Scoring, x: Mapping[str, float], top: int = 3) -> list[Reason]:
        """The ``top`` features pushing ``x`` towards fraud, strongest first, for the
        ``scoring`` of ``x`` just computed (before the model learns again).

        Only features with a positive contribution are reasons; fewer than ``top`` may come
        back. Linear and additive models: the exact split of the log-odds of that pass
        (``weight * standardised value`` and the extra terms' share). Others: replace each
        feature by its running mean and measure the score drop (one extra prediction per
        feature — milliseconds for a forest, fine for alerts only).
        """
        if self.examples_seen == 0 or top <= 0:
            return []
        if scoring.forward is not None:
            contributions = self.estimator.contributions(scoring.forward, x)
        elif self._linear is not None:
            contributions = self._linear_contributions(x)
        else:
            contributions = self._perturbation_contributions(x, scoring.score)
        ranked = sorted(
            ((c, k) for k, c in contributions.items() if c > 0.0 and k in x),
            key=lambda ck: ck[0],
            reverse=True,
        )
        return [Reason(str(k), float(x[k]), float(c)) for c, k in ranked[:top]]

    def _linear_contributions(self, x: Mapping[str, float]) -> dict[str, float]:
        lin = self._linear
        if isinstance(lin, compose.Pipeline):
            z = lin[0].transform_one(dict(x))
            weights = lin[1].weights
            return {k: weights.get(k, 0.0) * zk for k, zk in z.items()}
        return lin.contributions_one(x)

    def _perturbation_contributions(
        self, x: Mapping[str, float], base_score: float
    ) -> dict[str, float]:
        probe = dict(x)
        out: dict[str, float] = {}
        for k, v in x.items():
            s = self._baseline.get(k)
            if s is None or s[1] == v:
                continue
            probe[k] = s[1]
            out[k] = base_score - self.score_one(probe)
            probe[k] = v
        return out
