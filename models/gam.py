"""An online generalised additive model: logistic regression plus a step function per feature.

On the simulator's 60-day benchmark it ranks frauds better than the plain logistic
regression and than the batch RandomForest baseline (docs/model-quality.md), at the cost
of one ``searchsorted`` and one gather per score.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from models.linear import FastLogisticRegression, state_array

_TRIU: dict[int, tuple[np.ndarray, np.ndarray]] = {}

#: the pair hash, ``(first_bin * _PAIR_MIX + second_bin) * _PAIR_SCRAMBLE % table``
_PAIR_MIX = 1_000_003
_PAIR_SCRAMBLE = 2_654_435_761


def _triu(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of ``k`` items in row-major order, cached: the same few sizes
    recur every row."""
    pairs = _TRIU.get(k)
    if pairs is None:
        pairs = _TRIU[k] = np.triu_indices(k, 1)
    return pairs


def _pair_hash_tables(bins: int, table: int) -> tuple[np.ndarray, np.ndarray]:
    """Each bin's share of the pair hash, reduced modulo ``table``: a pair's slot is then
    ``(first[a] + second[b]) % table``, the same integer as the hash of ``(a, b)``
    (``(a * mix + b) * scramble`` splits into two terms modulo ``table``), with one gather
    per side instead of the multiply-add chain on every pair of every row. Also where the
    int64 product wraps (over ~3,400 bins) as long as ``table`` is a power of two (the
    default): a wrap subtracts a multiple of 2**64, which such a table divides."""
    first = [b * _PAIR_MIX * _PAIR_SCRAMBLE % table for b in range(bins)]
    second = [b * _PAIR_SCRAMBLE % table for b in range(bins)]
    return np.array(first, dtype=np.intp), np.array(second, dtype=np.intp)


class Selected(NamedTuple):
    """What the step functions and pairs used for one row (the forward pass's trace)."""

    bins: np.ndarray  # index into the (feature, bin) weights, one per feature
    pairs: np.ndarray  # hashed pair slots, pairs (i < j) of ``unusual`` in row-major order
    unusual: np.ndarray  # the features taking part in pairs, ascending


_NO_PAIRS = np.zeros(0, dtype=np.intp)


class AdditiveLogisticRegression(FastLogisticRegression):
    """Logistic regression plus a learned step function of every standardised feature.

    Each clipped standardised value also falls into one of a few fixed bins (edges in
    standard deviations); every (feature, bin) pair has its own weight, learned with the
    same normalised SGD step. The model stays additive — a generalised additive model —
    so an alert's reasons remain exact per-feature log-odds contributions, but a feature
    can now matter only beyond a threshold (an amount ten times the usual, a burst of
    small payments) instead of in proportion.

    With ``interactions`` set, every pair of *unusual* values in a row (standardised
    magnitude at least ``interactions``) also gets a weight, keyed by both features' bins
    and hashed into ``interaction_table`` slots: conjunctions such as "new device and new
    IP and a large transfer" that a purely additive model can only sum. Ordinary rows have
    few unusual values, so few pairs (a row with k unusual values has k(k-1)/2).

    Parameters
    ----------
    interactions
        Standardised magnitude from which a value takes part in pairs; ``None``: no pairs.
    interaction_table
        Slots of the hashed pair weights (8 bytes each).
    **kwargs
        :class:`FastLogisticRegression` parameters.

    Examples
    --------
    >>> model = AdditiveLogisticRegression()
    >>> for i in range(300):  # fraud only when x is far above its usual value
    ...     x = float(i % 10)
    ...     model.learn_one({"x": x}, x == 9.0)
    >>> p = {x: model.predict_proba_one({"x": x})[True] for x in (0.0, 5.0, 9.0)}
    >>> p[9.0] > 0.5 > p[5.0] and p[0.0] < 0.5
    True
    """

    def __init__(
        self, interactions: float | None = None, interaction_table: int = 1 << 18, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.interactions = interactions
        self.interaction_table = interaction_table
        self._wb = np.zeros(0)  # one weight per (feature, bin)
        self._offsets = np.zeros(0, dtype=np.intp)
        self._hash_first = self._hash_second = np.zeros(0, dtype=np.intp)  # see _pair_hash_tables
        self._wp = np.zeros(interaction_table if interactions is not None else 0)  # hashed pair weights

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {}
        yield {"interactions": 1.0, "interaction_table": 1 << 10}
        yield {"interactions": 1.0, "interaction_table": 1 << 10, "squash": True, "lr": 0.1}

    def _get_params(self) -> dict[str, Any]:
        """Own and inherited constructor arguments (River's default sees no ``**kwargs``), so a
        clone or a checkpoint keeps ``lr``, ``squash``, ... too."""
        inherited = inspect.signature(FastLogisticRegression.__init__).parameters
        params = {name: getattr(self, name) for name in inherited if name != "self"}
        return {**params, "interactions": self.interactions, "interaction_table": self.interaction_table}

    #: bin edges in standard deviations (values are clipped to +-clip first)
    EDGES = np.array([-2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0])

    def _add_features(self, new: list[Any]) -> None:
        super()._add_features(new)
        n, b = len(self._names), len(self.EDGES) + 1
        self._wb = np.concatenate([self._wb, np.zeros(n * b - len(self._wb))])
        self._offsets = np.arange(n) * b
        if self.interactions is not None:
            self._hash_first, self._hash_second = _pair_hash_tables(n * b, self.interaction_table)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["bin_weights"] = self._wb
        state["pair_weights"] = self._wp
        return state

    def _load_state(self, state: Mapping[str, Any]) -> None:
        super()._load_state(state)
        self._wb = state_array(state["bin_weights"], self._wb.shape, "bin_weights")
        self._wp = state_array(state["pair_weights"], self._wp.shape, "pair_weights")

    def _bins(self, z: np.ndarray) -> np.ndarray:
        bins = self.EDGES.searchsorted(z)
        bins += self._offsets
        return bins

    def _pair_slots(self, z: np.ndarray, bins: np.ndarray) -> Selected:
        """Hashed slots of every pair of unusual values (|z| >= ``interactions``), each
        pair keyed by both features' bins: "a new device *and* a transfer 8x the usual"."""
        unusual = (np.abs(z) >= self.interactions).nonzero()[0]
        k = len(unusual)
        if k < 2:
            return Selected(bins, unusual[:0], unusual)
        i, j = _triu(k)
        used = bins[unusual]
        slots = self._hash_first[used[i]]
        slots += self._hash_second[used[j]]
        slots %= self.interaction_table
        return Selected(bins, slots, unusual)

    def _extra_logit(self, z: np.ndarray) -> tuple[float, Selected]:
        """Log-odds of the step functions (and pairs) for the standardised row ``z``.

        ``np.add.reduce`` is ``ndarray.sum`` (the same pairwise summation) without its
        Python wrapper, which costs as much as the sum on these short rows."""
        bins = self._bins(z)
        extra = float(np.add.reduce(self._wb[bins]))
        if self.interactions is None:
            return extra, Selected(bins, _NO_PAIRS, _NO_PAIRS)
        selected = self._pair_slots(z, bins)
        extra += float(np.add.reduce(self._wp[selected.pairs]))
        return extra, selected

    def _extra_step(self, z: np.ndarray, g: float, trace: Selected) -> None:
        """Step the bins and pairs the forward pass selected, normalised like the linear step."""
        bins = trace.bins
        self._wb[bins] -= self.lr * g / (1.0 + len(bins))
        pairs = trace.pairs
        if self.interactions is not None and len(pairs):
            self._wp[pairs] -= self.lr * g / (1.0 + len(pairs))

    def _contributions(self, z: np.ndarray, trace: Selected) -> np.ndarray:
        """Linear term + the feature's step; a pair's weight is shared equally by its two
        features."""
        contrib = z * self._w + self._wb[trace.bins]
        if self.interactions is not None and len(trace.pairs):
            half = 0.5 * self._wp[trace.pairs]
            i, j = _triu(len(trace.unusual))
            np.add.at(contrib, trace.unusual[i], half)
            np.add.at(contrib, trace.unusual[j], half)
        return contrib
