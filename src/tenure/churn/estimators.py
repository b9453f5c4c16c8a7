"""Churn models that follow the scikit-learn estimator contract.

Each takes a DataFrame of inputs (the columns it was fitted on, by name) and gives
``predict_proba(X)[:, 1]``, the probability of the outcome within the horizon:

- :class:`ChurnLogistic`: logistic regression on standardised inputs. Transparent: one coefficient
  per input, and calibrated because it is fitted to the log-loss itself (no class weights).
- :class:`ChurnBoosting`: gradient-boosted trees, recalibrated with Platt scaling on held-out folds.
- :class:`TimeToChurn`: a Cox proportional-hazards model (lifelines) giving the probability of
  churn by any day, fitted to days-to-churn with censoring.
- :class:`HealthScoreRisk`: the health score itself, turned into a probability by Platt scaling.
- :class:`SegmentRate`: the baseline: each segment's churn rate in the training window.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def _two_columns(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    return np.column_stack([1.0 - p, p])


def _prepare() -> Pipeline:
    """Missing values to the median (with a flag column each), then standardised."""
    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    )


def _matrix(X: pd.DataFrame, columns: list[str]) -> np.ndarray:
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise ValueError(f"inputs missing from the data: {', '.join(missing)}")
    return np.asarray(X[columns].to_numpy(dtype=float))


class _Classifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Shared plumbing: remember the input columns and the two classes."""

    columns_: list[str]
    classes_: np.ndarray

    def _start(self, X: pd.DataFrame, y: Any) -> np.ndarray:
        self.columns_ = list(X.columns)
        self.classes_ = np.array([0, 1])
        labels = np.asarray(y, dtype=int)
        if len(np.unique(labels)) < 2:
            raise ValueError("the training window holds only one outcome: it needs both")
        return labels

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError


class ChurnLogistic(_Classifier):
    """Logistic regression on standardised inputs (missing values imputed and flagged)."""

    def __init__(self, C: float = 0.1) -> None:
        self.C = C

    def fit(self, X: pd.DataFrame, y: Any) -> ChurnLogistic:
        labels = self._start(X, y)
        self.pipeline_ = make_pipeline(_prepare(), LogisticRegression(C=self.C, max_iter=5000))
        self.pipeline_.fit(X[self.columns_].to_numpy(dtype=float), labels)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.pipeline_.predict_proba(_matrix(X, self.columns_)))

    def coefficients(self) -> dict[str, float]:
        """Change in log-odds per standard deviation of each input (and per missing flag)."""
        names = self.pipeline_[0].get_feature_names_out(self.columns_)
        coef = self.pipeline_[-1].coef_[0]
        return {str(n): float(c) for n, c in zip(names, coef, strict=True)}


MIN_KNOWN = 30  # values a column needs for the boosted trees to use it


class ChurnBoosting(_Classifier):
    """Gradient-boosted trees (missing values handled natively), Platt-calibrated on 3 folds."""

    def __init__(
        self, max_iter: int = 150, learning_rate: float = 0.05, max_leaf_nodes: int = 15
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes

    def fit(self, X: pd.DataFrame, y: Any) -> ChurnBoosting:
        labels = self._start(X, y)
        # trees need spread, and values in every calibration fold (a sparse column, such as a
        # departure seen on a few accounts, can be all missing in one and break the binning)
        self.columns_ = [c for c in self.columns_
                         if X[c].nunique() > 1 and X[c].notna().sum() >= MIN_KNOWN]  # fmt: skip
        trees = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, l2_regularization=1.0, random_state=0,
        )  # fmt: skip
        folds = int(min(3, np.bincount(labels).min()))
        self.model_ = CalibratedClassifierCV(trees, method="sigmoid", cv=max(folds, 2))
        self.model_.fit(X[self.columns_].to_numpy(dtype=float), labels)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(_matrix(X, self.columns_)))


class HealthScoreRisk(_Classifier):
    """The health score as a churn probability: a logistic curve fitted to score and outcome."""

    def __init__(self, column: str = "health_score") -> None:
        self.column = column

    def fit(self, X: pd.DataFrame, y: Any) -> HealthScoreRisk:
        labels = self._start(X[[self.column]], y)
        self.curve_ = LogisticRegression().fit(self._scores(X), labels)
        return self

    def _scores(self, X: pd.DataFrame) -> np.ndarray:
        scores = _matrix(X, [self.column])
        return np.where(np.isnan(scores), 50.0, scores) / 100.0

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.curve_.predict_proba(self._scores(X)))


class SegmentRate(_Classifier):
    """Baseline: the outcome rate of the account's segment in the training window."""

    def fit(self, X: pd.DataFrame, y: Any) -> SegmentRate:
        labels = self._start(X, y)
        self.overall_ = float(labels.mean())
        self.rates_ = {}
        for column in self.columns_:
            mask = X[column].to_numpy(dtype=float) > 0
            # shrink small segments toward the overall rate (10 pseudo-observations)
            self.rates_[column] = (labels[mask].sum() + 10 * self.overall_) / (mask.sum() + 10)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.full(len(X), self.overall_)
        values = _matrix(X, list(self.rates_))
        for i, rate in enumerate(self.rates_.values()):
            p[values[:, i] > 0] = rate
        return _two_columns(p)


class TimeToChurn(BaseEstimator):  # type: ignore[misc]
    """Cox proportional hazards over days to churn (lifelines), on standardised inputs.

    ``fit(X, y)`` takes ``y`` as a two-column array: days from the snapshot to churn (or to the end
    of what is known), and whether churn came. ``predict_proba`` gives churn by ``horizon`` days;
    :meth:`churn_by` by any number of days per row.
    """

    def __init__(self, horizon: int = 90, penalizer: float = 0.1) -> None:
        self.horizon = horizon
        self.penalizer = penalizer

    def fit(self, X: pd.DataFrame, y: Any) -> TimeToChurn:
        from lifelines import CoxPHFitter

        self.columns_ = list(X.columns)
        self.classes_ = np.array([0, 1])
        target = np.asarray(y, dtype=float)
        self.prepare_ = _prepare()
        values = self.prepare_.fit_transform(X[self.columns_].to_numpy(dtype=float))
        keep = values.std(axis=0) > 0
        self.keep_ = keep
        data = pd.DataFrame(values[:, keep])
        data["_days"], data["_event"] = target[:, 0], target[:, 1]
        self.cox_ = CoxPHFitter(penalizer=self.penalizer)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.cox_.fit(data, duration_col="_days", event_col="_event")
        self.warnings_ = sorted({str(w.message).splitlines()[0] for w in caught})
        hazard = self.cox_.baseline_cumulative_hazard_
        self.times_ = hazard.index.to_numpy(dtype=float)
        self.cumulative_ = hazard.iloc[:, 0].to_numpy(dtype=float)
        return self

    def _risk(self, X: pd.DataFrame) -> np.ndarray:
        values = self.prepare_.transform(_matrix(X, self.columns_))[:, self.keep_]
        return np.asarray(self.cox_.predict_partial_hazard(pd.DataFrame(values)), dtype=float)

    def churn_by(self, X: pd.DataFrame, days: Any) -> np.ndarray:
        """Probability of churn within ``days`` (a number, or one per row)."""
        at = np.broadcast_to(np.asarray(days, dtype=float), (len(X),))
        index = np.searchsorted(self.times_, at, side="right") - 1
        base = np.where(index >= 0, self.cumulative_[np.maximum(index, 0)], 0.0)
        return np.asarray(1.0 - np.exp(-base * self._risk(X)))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return _two_columns(self.churn_by(X, self.horizon))

    def coefficients(self) -> dict[str, float]:
        names = self.prepare_[0].get_feature_names_out(self.columns_)[self.keep_]
        return {str(n): float(c) for n, c in zip(names, self.cox_.params_.to_numpy(), strict=True)}
