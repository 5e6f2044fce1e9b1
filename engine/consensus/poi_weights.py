"""Next-epoch validator weights from Proof-of-Impact (the BIZRA SOT formula), in fixed point.

    I_v(t) = lambda * I_v(t-1) + sum(poi_score of v's valid attestations in epoch t)
    W_v    = min(cap, base + a * I_v + b * rep_v + c * isqrt(stake_v))

Fixed-point scale: every real-valued quantity is an int64 count of micro-units, SCALE = 10^6
(1.0 == 1_000_000). This matches ``poi_score``, which is already parts per million, so one
attestation with a perfect score adds exactly 1.0 to I_v. Coefficients (defaults base 0.10,
a 1.00, b 0.50, c 0.05, cap 10.0, lambda 0.90) are micro-units too (100_000, 1_000_000, ...),
parsed from decimal strings without floats. ``reputation`` is in micro-units, ``stake`` in whole
units (isqrt(stake) is an integer and c * isqrt(stake) is therefore already in micro-units).
Every product ``k * x / SCALE`` is floored and computed as ``(x // S) * k + (x % S) * k // S``,
which is exact and never forms k * x (no int64 overflow while the result fits).
The resulting weights (<= cap, 10^7 micro-units by default) feed ``BlockGraph(weights)``.

Pipeline: the attestation table is filtered (``valid`` if present), deduplicated (by ``body``
if present: identical re-deliveries count once) and summed per (epoch, validator) as a Polars
lazy query; the recurrence runs once per epoch over a dense int64 array (epochs without
attestations still decay I); the weight formula is one Polars expression over the validators.

Example::

    w = poi_weights(attestations_df, validators_df)   # -> validator_index, impact, weight
    g = BlockGraph(weights_array(w))
"""
from __future__ import annotations

import dataclasses
import decimal

import numpy as np
import polars as pl

__all__ = ["SCALE", "PoiParams", "to_fixed", "isqrt_expr", "poi_weights", "weights_array"]

SCALE = 1_000_000


def to_fixed(text: str | int) -> int:
    """Exact micro-units of a decimal string: ``to_fixed("0.05") == 50_000`` (no floats)."""
    try:
        d = decimal.Decimal(str(text))
    except decimal.InvalidOperation:
        raise ValueError(f"not a decimal number: {text!r}") from None
    scaled = d * SCALE
    if scaled != scaled.to_integral_value() or scaled < 0:
        raise ValueError(f"{text!r}: must be >= 0 with at most 6 decimal places")
    return int(scaled)


@dataclasses.dataclass(frozen=True)
class PoiParams:
    """Coefficients in micro-units (SCALE = 10^6). Defaults: the BIZRA SOT values."""

    base: int = 100_000
    a: int = 1_000_000
    b: int = 500_000
    c: int = 50_000
    cap: int = 10_000_000
    lam: int = 900_000

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if not 0 <= getattr(self, f.name) < 2**40:
                raise ValueError(f"{f.name} must be within 0..2^40 micro-units")
        if self.lam > SCALE:
            raise ValueError("lam must be <= 1.0")


def _scaled(x: pl.Expr, k: int) -> pl.Expr:
    """floor(k * x / SCALE) for int64 x >= 0 without forming k * x."""
    return (x // SCALE) * k + ((x % SCALE) * k) // SCALE


def _scaled_np(x: np.ndarray, k: int) -> np.ndarray:
    return (x // SCALE) * k + ((x % SCALE) * k) // SCALE


def isqrt_expr(x: pl.Expr) -> pl.Expr:
    """Integer square root of int64 x >= 0: float sqrt, then exact integer corrections.

    For x < 2^63 the float estimate is within 1 of isqrt(x), so one step each way suffices;
    the squares are compared as ``s > x // s`` so nothing overflows near 2^63.
    """
    s0 = x.cast(pl.Float64).sqrt().floor().cast(pl.Int64)
    s1 = pl.when((s0 > 0) & (s0 > x // pl.max_horizontal(s0, 1))).then(s0 - 1).otherwise(s0)
    return pl.when(s1 + 1 <= x // (s1 + 1)).then(s1 + 1).otherwise(s1)


def _epoch_sums(attestations) -> pl.DataFrame:
    lf = attestations.lazy() if isinstance(attestations, pl.DataFrame) else attestations
    cols = lf.collect_schema().names()
    missing = [c for c in ("validator_index", "epoch", "poi_score") if c not in cols]
    if missing:
        raise ValueError(f"attestations: missing column(s) {', '.join(missing)}")
    if "valid" in cols:
        lf = lf.filter(pl.col("valid"))
    if "body" in cols:
        lf = lf.unique(subset=["body"], keep="first")
    return (lf.select(pl.col("validator_index").cast(pl.Int64), pl.col("epoch").cast(pl.Int64),
                      pl.col("poi_score").cast(pl.Int64))
            .group_by("epoch", "validator_index").agg(pl.col("poi_score").sum())
            .sort("epoch", "validator_index").collect())


def poi_weights(attestations, validators: pl.DataFrame | None = None, *,
                prev_impact: pl.DataFrame | None = None, params: PoiParams = PoiParams(),
                first_epoch: int | None = None, last_epoch: int | None = None) -> pl.DataFrame:
    """Weights for the epoch after ``last_epoch`` (default: the last epoch in the table).

    attestations: DataFrame/LazyFrame with validator_index, epoch, poi_score (optional ``valid``,
    ``body``); validators: optional validator_index (or index), reputation (micro-units), stake;
    prev_impact: optional validator_index, impact = I_v(first_epoch - 1) in micro-units.
    Returns validator_index, impact (I_v(last_epoch)), weight (micro-units), sorted by index:
    one row per validator of ``validators`` when given (attestations of other indices are
    ignored), else one per index 0..max over the valid attestations and prev_impact.
    """
    sums = _epoch_sums(attestations)
    if validators is not None and "validator_index" not in validators.columns:
        validators = validators.rename({"index": "validator_index"})
    sizes = [0]
    for df in (sums, validators, prev_impact):
        if df is not None and df.height:
            sizes.append(int(df["validator_index"].max()) + 1)
    n = max(sizes)
    if sums.height and int(sums["validator_index"].min()) < 0:
        raise ValueError("attestations: negative validator_index")
    impact = np.zeros(n, np.int64)
    if prev_impact is not None and prev_impact.height:
        impact[prev_impact["validator_index"].to_numpy()] = prev_impact["impact"].to_numpy()
    epochs = sums["epoch"].to_numpy()
    lo = first_epoch if first_epoch is not None else (int(epochs.min()) if epochs.size else 0)
    hi = last_epoch if last_epoch is not None else (int(epochs.max()) if epochs.size else lo - 1)
    keep = (epochs >= lo) & (epochs <= hi)
    epochs = epochs[keep]
    vidx = sums["validator_index"].to_numpy()[keep]
    score = sums["poi_score"].to_numpy()[keep]
    bounds = np.flatnonzero(np.diff(epochs)) + 1
    starts = np.concatenate([[0], bounds]) if epochs.size else np.zeros(0, np.int64)
    ends = np.concatenate([bounds, [epochs.size]]) if epochs.size else np.zeros(0, np.int64)
    t = lo
    for s, e in zip(starts, ends):  # once per epoch that has attestations
        ep = int(epochs[s])
        impact = _decay(impact, ep - t, params.lam)  # epochs t..ep-1 had nothing: decay only
        impact = _scaled_np(impact, params.lam)
        np.add.at(impact, vidx[s:e], score[s:e])
        t = ep + 1
    impact = _decay(impact, hi + 1 - t, params.lam)
    frame = pl.DataFrame({"validator_index": np.arange(n, dtype=np.int64), "impact": impact})
    if validators is not None:
        extra = [c for c in ("reputation", "stake") if c in validators.columns]
        frame = frame.join(validators.select(pl.col("validator_index").cast(pl.Int64),
                                             *[pl.col(c).cast(pl.Int64) for c in extra]),
                           on="validator_index", how="inner")
    for c in ("reputation", "stake"):
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(0, pl.Int64).alias(c))
    rep = pl.col("reputation").fill_null(0)
    stake = pl.col("stake").fill_null(0)
    raw = (pl.lit(params.base, pl.Int64) + _scaled(pl.col("impact"), params.a)
           + _scaled(rep, params.b) + isqrt_expr(stake) * params.c)
    return (frame.with_columns(pl.min_horizontal(raw, pl.lit(params.cap, pl.Int64)).alias("weight"))
            .select("validator_index", "impact", "weight").sort("validator_index"))


def _decay(impact: np.ndarray, steps: int, lam: int) -> np.ndarray:
    """Apply I <- floor(lam * I) `steps` times, stopping early once everything is 0."""
    for _ in range(max(0, steps)):
        if not impact.any():
            break
        impact = _scaled_np(impact, lam)
    return impact


def weights_array(weights: pl.DataFrame) -> np.ndarray:
    """Dense int64 weights indexed by validator (what BlockGraph takes)."""
    out = np.zeros(int(weights["validator_index"].max()) + 1 if weights.height else 0, np.int64)
    out[weights["validator_index"].to_numpy()] = weights["weight"].to_numpy()
    return out
