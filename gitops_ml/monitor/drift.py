"""Drift of one feature: production values against its reference profile (pure statistics).

PSI over the reference's decile bins (or its categories), plus a test from scipy: two-sample
Kolmogorov-Smirnov for numbers (the reference represented by its percentiles; the p-value from the
asymptotic two-sample distribution with the reference's real size, as scipy's ks_2samp does) and
chi-square homogeneity for categories. A feature drifts when PSI reaches the threshold and the
test says the shift is not sampling noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from gitops_ml.monitor.profile import CATEGORICAL, OTHER_LABEL, FeatureProfile, bin_counts
from gitops_ml.types import DriftThresholds

EPSILON = 1e-4  # floor of a bin's share in PSI: an empty bin must not make it infinite


@dataclass(frozen=True)
class Distribution:
    """Shares per bin (or category), reference next to production: what the report plots."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    production: tuple[float, ...]


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    path: str
    kind: str  # numeric | categorical
    reference_count: int
    production_count: int
    missing: int  # production values absent or not of the feature's kind
    psi: float
    test: str  # "KS" | "chi-square" | "" (too few categories to test)
    statistic: float
    p_value: float
    drifted: bool
    distribution: Distribution
    reference_mean: float | None = None
    production_mean: float | None = None


def psi(reference: Sequence[float] | np.ndarray, production: Sequence[float] | np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    p = np.clip(np.asarray(production, dtype=np.float64), EPSILON, None)
    q = np.clip(np.asarray(reference, dtype=np.float64), EPSILON, None)
    return float(np.sum((p - q) * np.log(p / q)))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros_like(counts, dtype=np.float64)


def numeric_drift(profile: FeatureProfile, values: np.ndarray, missing: int, thresholds: DriftThresholds) -> FeatureDrift:
    """Drift of a numeric feature; `values` are the finite production values."""
    summary = profile.numeric
    assert summary is not None
    reference_counts = np.asarray(summary.counts, dtype=np.float64)
    production_counts = bin_counts(values, summary.edges).astype(np.float64)
    ref, prod = _shares(reference_counts), _shares(production_counts)
    value = psi(ref, prod)
    statistic, p_value = ks_against_percentiles(summary.quantiles, profile.count, values)
    edges = summary.edges
    labels = tuple(_bin_label(edges, i) for i in range(len(edges) - 1))
    return FeatureDrift(
        name=profile.name, path=str(profile.path), kind=profile.kind, reference_count=profile.count,
        production_count=int(values.size), missing=missing, psi=value, test="KS", statistic=statistic, p_value=p_value,
        drifted=_drifted(value, p_value, thresholds), distribution=Distribution(labels, tuple(map(float, ref)), tuple(map(float, prod))),
        reference_mean=summary.mean, production_mean=float(values.mean()) if values.size else None,
    )


def ks_against_percentiles(quantiles: Sequence[float], reference_count: int, values: np.ndarray) -> tuple[float, float]:
    """(D, p): KS distance between the production values and the reference's percentiles (a step
    CDF at 1 % resolution, so ties of discrete measurements count as ties), and its two-sample p-value."""
    if values.size == 0:
        return 0.0, 1.0
    statistic = float(stats.ks_2samp(np.asarray(quantiles, dtype=np.float64), values, method="asymp").statistic)
    n, m = values.size, max(reference_count, 1)
    effective = max(1, round(n * m / (n + m)))
    return statistic, float(stats.kstwo.sf(statistic, effective))


def categorical_drift(profile: FeatureProfile, counted: Mapping[str, int], missing: int, thresholds: DriftThresholds) -> FeatureDrift:
    """Drift of a categorical feature; `counted` maps each production category to its count."""
    summary = profile.categorical
    assert summary is not None
    labels = sorted(summary.categories)
    reference_counts = [summary.categories[k] for k in labels]
    production_counts = [int(counted.get(k, 0)) for k in labels]
    other_production = int(sum(v for k, v in counted.items() if k not in summary.categories))
    if summary.other or other_production:
        labels.append(OTHER_LABEL)
        reference_counts.append(summary.other)
        production_counts.append(other_production)
    ref_arr, prod_arr = np.asarray(reference_counts, dtype=np.float64), np.asarray(production_counts, dtype=np.float64)
    ref, prod = _shares(ref_arr), _shares(prod_arr)
    value = psi(ref, prod)
    keep = (ref_arr + prod_arr) > 0
    test, statistic, p_value = "", 0.0, 1.0
    if keep.sum() >= 2 and prod_arr.sum() > 0:
        result = stats.chi2_contingency(np.vstack([ref_arr[keep], prod_arr[keep]]), correction=False)
        test, statistic, p_value = "chi-square", float(result.statistic), float(result.pvalue)
    return FeatureDrift(
        name=profile.name, path=str(profile.path), kind=CATEGORICAL, reference_count=profile.count,
        production_count=int(prod_arr.sum()), missing=missing, psi=value, test=test, statistic=statistic, p_value=p_value,
        drifted=_drifted(value, p_value, thresholds), distribution=Distribution(tuple(labels), tuple(map(float, ref)), tuple(map(float, prod))),
    )


def _drifted(value: float, p_value: float, thresholds: DriftThresholds) -> bool:
    return value >= thresholds.psi and (thresholds.p_value >= 1 or p_value < thresholds.p_value)


def _bin_label(edges: Sequence[float], i: int) -> str:
    low = "-inf" if i == 0 else _short(edges[i])
    high = "+inf" if i == len(edges) - 2 else _short(edges[i + 1])
    return f"[{low}, {high})"


def _short(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)
