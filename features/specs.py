"""What a feature is (:class:`FeatureSpec`) and the builders that name features.

A windowed feature's name comes from its parameters, as in River's
``feature_extraction/agg.py``: ``{stage}_{on}_{how}_{window}``, e.g.
``account_amount_mean_30d`` is the *mean* of the *amount* over the account's *30d* window.
The window's span in words is built from its tiling in :data:`features.windows.WINDOWS`,
so nothing restates it. The spec of every feature is in :mod:`features.definitions`.

>>> [s.name for s in windowed("merchant", "tx", "count", ("1h", "7d"),
...     "Transactions at the merchant in {span}.", ("merchant_id",), "{value:.0f} in {period}")]
['merchant_tx_count_1h', 'merchant_tx_count_7d']
>>> window_span("24h")
'the last 24 hours (the current 2-hour tile and the 11 before)'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from features.windows import DAY_S, WINDOWS

__all__ = [
    "AGGREGATES",
    "FEATURE_TYPES",
    "STAGES",
    "WINDOW_NAMES",
    "FeatureSpec",
    "binary",
    "one_hot",
    "window_period",
    "window_span",
    "windowed",
]

FEATURE_TYPES = ("numeric", "binary", "cyclic", "one-hot", "ratio")
WINDOW_NAMES: tuple[str, ...] = tuple(WINDOWS)
#: Where a feature is computed: ``"account"`` by :func:`features.account.update_account`,
#: ``"merchant"`` by :func:`features.merchant.update_merchant`.
STAGES = ("account", "merchant")
#: Aggregates a windowed feature can take (``how``).
AGGREGATES = ("count", "sum", "mean", "std", "max", "rate")


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Catalogue entry of one feature.

    ``template`` is formatted with ``value=`` to give an alert reason. For ``binary`` and
    ``one-hot`` features it describes the value 1 and ``template_off`` the value 0.

    How and where it is computed: ``stage`` names the extractor (see :data:`STAGES`). A
    windowed aggregate is ``how`` (one of :data:`AGGREGATES`) of ``on`` over ``window``;
    a one-hot feature is 1 when its source field equals ``category`` (``None``: the
    ``unknown`` bucket, the field absent or none of the others). Any other feature is
    defined by its description.
    """

    name: str
    description: str
    source_fields: tuple[str, ...]
    window: str | None
    type: str
    template: str
    template_off: str = ""
    stage: str = field(default="account", kw_only=True)
    on: str | None = field(default=None, kw_only=True)
    how: str | None = field(default=None, kw_only=True)
    category: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.type not in FEATURE_TYPES:
            raise ValueError(f"feature {self.name}: type {self.type!r} is not one of {FEATURE_TYPES}")
        if self.window is not None and self.window not in WINDOW_NAMES:
            raise ValueError(f"feature {self.name}: window {self.window!r} is not one of {WINDOW_NAMES}")
        if self.stage not in STAGES:
            raise ValueError(f"feature {self.name}: stage {self.stage!r} is not one of {STAGES}")
        if self.how is not None and self.how not in AGGREGATES:
            raise ValueError(f"feature {self.name}: aggregate {self.how!r} is not one of {AGGREGATES}")


def window_period(window: str) -> str:
    """The window's nominal length in words.

    >>> window_period("1h"), window_period("24h"), window_period("30d")
    ('hour', '24 hours', '30 days')
    """
    length = WINDOWS[window].length_s
    if length % DAY_S == 0 and length >= 2 * DAY_S:
        return f"{length / DAY_S:g} days"
    hours = length / 3600.0
    return "hour" if hours == 1 else f"{hours:g} hours"


def _tile(tile_s: float) -> str:
    if tile_s == DAY_S:
        return "UTC day"  # day tiles are aligned to the epoch: 00:00 UTC
    if tile_s % 3600.0 == 0:
        return f"{tile_s / 3600.0:g}-hour tile"
    return f"{tile_s / 60.0:g}-minute tile"


def window_span(window: str) -> str:
    """What the tiled window covers exactly (see :mod:`features.windows`)."""
    w = WINDOWS[window]
    return f"the last {window_period(window)} (the current {_tile(w.tile_s)} and the {w.tiles - 1} before)"


def windowed(
    stage: str,
    on: str,
    how: str,
    windows: tuple[str, ...],
    description: str,
    sources: tuple[str, ...],
    template: str,
    kind: str = "numeric",
) -> tuple[FeatureSpec, ...]:
    """One ``{stage}_{on}_{how}_{window}`` feature of type ``kind`` per window.

    ``{span}`` in the description becomes :func:`window_span`, ``{period}`` in the
    template :func:`window_period` (``{value...}`` is left for :func:`describe`).
    """
    return tuple(
        FeatureSpec(
            f"{stage}_{on}_{how}_{w}",
            description.replace("{span}", window_span(w)),
            sources,
            w,
            kind,
            template.replace("{period}", window_period(w)),
            stage=stage,
            on=on,
            how=how,
        )
        for w in windows
    )


def one_hot(stage: str, prefix: str, source: str, categories: tuple[str, ...], what: str) -> tuple[FeatureSpec, ...]:
    """``{prefix}_{category}`` per category, then ``{prefix}_unknown`` for anything else."""
    specs = [
        FeatureSpec(
            f"{prefix}_{c}",
            f"1 if the {what} is '{c}'.",
            (source,),
            None,
            "one-hot",
            f"{what} is {c}",
            f"{what} is not {c}",
            stage=stage,
            category=c,
        )
        for c in categories
    ]
    specs.append(
        FeatureSpec(
            f"{prefix}_unknown",
            f"1 if the {what} is absent or not one of {', '.join(categories)}.",
            (source,),
            None,
            "one-hot",
            f"{what} not given or unrecognised",
            f"{what} given",
            stage=stage,
        )
    )
    return tuple(specs)


def binary(
    name: str, description: str, sources: tuple[str, ...], on: str, off: str, *, stage: str = "account"
) -> FeatureSpec:
    """A 0/1 feature; ``on`` and ``off`` are its reason texts for 1 and 0."""
    return FeatureSpec(name, description, sources, None, "binary", on, off, stage=stage)
