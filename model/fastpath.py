"""A numpy fast path for the fitted preprocessor: dict rows -> transformed matrix without pandas.

``ColumnTransformer.transform`` on a DataFrame costs milliseconds of fixed overhead a call, which
dominates when the stream scores a small poll batch or the web form scores one customer. The
preprocessor that :func:`model.pipeline.build_preprocessor` builds is simple (median imputation with
missing indicators, optional ``log1p``, standard scaling; constant imputation and one-hot encoding),
so its fitted parameters are read out once and applied with numpy.

:func:`compile_preprocessor` returns ``None`` for any structure it does not recognise, and
:class:`model.scoring.SegmentModel` checks the fast path against the real pipeline when it loads a
model (falling back if they differ), so the fast path can never silently disagree with training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from model.pipeline import MISSING_CATEGORY, log1p_clipped
from model.spec import is_missing, number_or_nan

__all__ = ["CompiledPreprocessor", "compile_preprocessor"]


def _category(value: Any) -> str:
    return MISSING_CATEGORY if is_missing(value) else str(value)


@dataclass(frozen=True)
class _NumericBlock:
    names: tuple[str, ...]
    medians: np.ndarray
    indicator: np.ndarray  # column indices that get a missing-indicator column
    log: bool
    mean: np.ndarray
    scale: np.ndarray

    def apply(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        values = np.array([[number_or_nan(row.get(n)) for n in self.names] for row in rows], dtype=float)
        return self._scaled(values)

    def apply_columns(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        if not self.names:
            return np.zeros((n, 0))
        return self._scaled(np.column_stack([np.asarray(columns[name], dtype=float) for name in self.names]))

    def _scaled(self, values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        block = np.hstack([np.where(missing, self.medians, values), missing[:, self.indicator]])
        if self.log:
            block = log1p_clipped(block)
        return (block - self.mean) / self.scale


@dataclass(frozen=True)
class _CategoricalBlock:
    names: tuple[str, ...]
    lookups: tuple[dict[str, int], ...]  # per feature: category -> output column
    width: int

    def apply(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        out = np.zeros((len(rows), self.width))
        for i, row in enumerate(rows):
            for name, lookup in zip(self.names, self.lookups, strict=True):
                column = lookup.get(_category(row.get(name)))
                if column is not None:  # unseen category: all zeros, like handle_unknown="ignore"
                    out[i, column] = 1.0
        return out

    def apply_columns(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        """Coded categorical columns (``model.feature_columns.CodedColumn``): each distinct value is
        looked up once."""
        out = np.zeros((n, self.width))
        rows = np.arange(n)
        for name, lookup in zip(self.names, self.lookups, strict=True):
            column = columns[name]
            # output column of each value (-1: unseen in training), then of "missing" (code -1: last)
            where = [lookup.get(_category(value), -1) for value in column.values]
            where.append(lookup.get(MISSING_CATEGORY, -1))
            target = np.asarray(where, dtype=np.int64)[column.codes]
            hit = target >= 0
            out[rows[hit], target[hit]] = 1.0
        return out


class CompiledPreprocessor:
    """The fitted preprocessor as numpy blocks; ``transform(rows)`` returns the same matrix."""

    def __init__(self, blocks: list[_NumericBlock | _CategoricalBlock]) -> None:
        self.blocks = blocks

    def transform(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.hstack([block.apply(rows) for block in self.blocks])

    def transform_columns(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        """The same matrix from ``n`` rows given as columns (floats with NaN; categoricals)."""
        return np.hstack([block.apply_columns(columns, n) for block in self.blocks])


def _numeric(pipe: Pipeline, names: list[str]) -> _NumericBlock | None:
    steps = dict(pipe.steps)
    imputer, scaler = steps.get("impute"), steps.get("scale")
    if [n for n, _ in pipe.steps] not in (["impute", "scale"], ["impute", "log1p", "scale"]):
        return None
    if imputer.strategy != "median" or scaler.scale_ is None or not scaler.with_mean:
        return None
    if np.isnan(imputer.statistics_.astype(float)).any():  # all-NaN columns would be dropped from output
        return None
    indicator = imputer.indicator_.features_ if imputer.add_indicator else np.array([], dtype=int)
    return _NumericBlock(
        tuple(names), imputer.statistics_.astype(float), np.asarray(indicator, dtype=int),
        "log1p" in steps, scaler.mean_, scaler.scale_,
    )  # fmt: skip


def _categorical(pipe: Pipeline, names: list[str]) -> _CategoricalBlock | None:
    if [n for n, _ in pipe.steps] != ["impute", "onehot"] or pipe["onehot"].drop_idx_ is not None:
        return None
    if pipe["impute"].fill_value != MISSING_CATEGORY or pipe["onehot"].handle_unknown != "ignore":
        return None
    lookups, offset = [], 0
    for categories in pipe["onehot"].categories_:
        lookups.append({str(c): offset + j for j, c in enumerate(categories)})
        offset += len(categories)
    return _CategoricalBlock(tuple(names), tuple(lookups), offset)


def compile_preprocessor(preprocessor: Any) -> CompiledPreprocessor | None:
    """Read a fitted ColumnTransformer from ``build_preprocessor`` into numpy blocks, or ``None``."""
    if not isinstance(preprocessor, ColumnTransformer):
        return None
    blocks = []
    for name, pipe, columns in preprocessor.transformers_:
        if name == "remainder":
            continue
        if not isinstance(pipe, Pipeline):
            return None
        block = _categorical(pipe, list(columns)) if name == "categorical" else _numeric(pipe, list(columns))
        if block is None:
            return None
        blocks.append(block)
    return CompiledPreprocessor(blocks) if blocks else None
