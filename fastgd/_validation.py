"""Checks of parameters and arrays at fastgd's public boundary.

Kernels never check anything; everything they assume is established here.
Parameter rules are data: ``PARAMETER_CONSTRAINTS`` in ``_sgd.py`` maps each
parameter to the constraints below, and ``check_params`` applies them.
"""

import numbers

import numpy as np
from sklearn.utils.validation import check_array, validate_data


class Options:
    """The value must be one of a fixed set (usually of strings)."""

    def __init__(self, *values):
        self.values = values

    def accepts(self, value):
        return isinstance(value, str) and value in self.values

    def __str__(self):
        return "one of " + ", ".join(repr(v) for v in self.values)


class Interval:
    """A real (or integral) number between ``low`` and ``high``.

    ``closed`` is "both", "left", "right" or "neither"; ``None`` bounds are
    open-ended. Booleans are never accepted as numbers.
    """

    def __init__(self, kind, low, high, closed="both"):
        self.kind = kind
        self.low = low
        self.high = high
        self.closed = closed

    def accepts(self, value):
        if isinstance(value, (bool, np.bool_)):
            return False
        if self.kind == "int" and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Real) or not np.isfinite(value):
            return False
        if self.low is not None:
            left = self.closed in ("both", "left")
            if value < self.low or (value == self.low and not left):
                return False
        if self.high is not None:
            right = self.closed in ("both", "right")
            if value > self.high or (value == self.high and not right):
                return False
        return True

    def __str__(self):
        kind = "an integer" if self.kind == "int" else "a finite real number"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{kind} in {left}{low}, {high}{right}"


class Boolean:
    """``True`` or ``False`` (numpy booleans included)."""

    def accepts(self, value):
        return isinstance(value, (bool, np.bool_))

    def __str__(self):
        return "a bool"


class IsNone:
    """``None``."""

    def accepts(self, value):
        return value is None

    def __str__(self):
        return "None"


class RandomState:
    """An int seed, None, or a numpy ``Generator`` or ``RandomState``."""

    def accepts(self, value):
        if value is None:
            return True
        if isinstance(value, (np.random.Generator, np.random.RandomState)):
            return True
        return Interval("int", 0, 2**32 - 1).accepts(value)

    def __str__(self):
        return (
            "None, an integer in [0, 2**32 - 1], or a numpy.random.Generator "
            "or RandomState"
        )


def check_params(params, constraints):
    """Raise ``ValueError`` for the first parameter that breaks its rule.

    ``params`` maps names to values; ``constraints`` maps names to a list of
    rule objects, any one of which accepting the value makes it valid.
    """
    for name, rules in constraints.items():
        value = params[name]
        if not any(rule.accepts(value) for rule in rules):
            allowed = " or ".join(str(rule) for rule in rules)
            raise ValueError(
                f"Invalid value for parameter {name!r}: {value!r}. "
                f"Expected {allowed}."
            )


def _is_numeric_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:  # pandas extension types: strings, categoricals, ...
        return False
    return dtype.kind in "biuf"


def _reject_text(X, name):
    """Raise a ``ValueError`` naming the first non-numeric column of ``X``.

    Text is refused even when it spells numbers: a string column is almost
    always a category or a parsing mistake, not a feature.
    """
    dtypes = getattr(X, "dtypes", None)
    if dtypes is not None and hasattr(dtypes, "items"):
        for column, dtype in dtypes.items():
            if not _is_numeric_dtype(dtype):
                raise ValueError(
                    f"{name} column {column!r} is not numeric (dtype {dtype}); "
                    "encode it as numbers (for example one-hot) or drop it."
                )
        return
    if dtypes is not None and not _is_numeric_dtype(dtypes):
        raise ValueError(f"{name} is not numeric (dtype {dtypes}).")
    array = X if isinstance(X, np.ndarray) else None
    if isinstance(X, (list, tuple)):
        array = np.asarray(X, dtype=object)
    if array is None or array.dtype.kind not in "OUSV":
        return
    if array.dtype.kind in "USV":
        raise ValueError(
            f"{name} holds text (dtype {array.dtype}); convert it to numbers."
        )
    columns = array.reshape(len(array), -1).T if array.ndim else [[array.item()]]
    for index, column in enumerate(columns):
        if any(isinstance(value, (str, bytes)) for value in column):
            raise ValueError(
                f"{name} column {index} holds non-numeric values; encode it "
                "as numbers or drop it."
            )


def check_fit_data(estimator, X, y):
    """Validate training data; return C-contiguous ``X`` and ``y``.

    ``X`` keeps float32 or float64 as given; any other numeric dtype becomes
    float64. ``y`` takes ``X``'s dtype. NaN, infinity, empty input, text
    columns and mismatched lengths raise ``ValueError``. Copies are made only
    where the dtype or memory layout must change; the caller's arrays are
    never written to.
    """
    _reject_text(X, "X")
    _reject_text(y, "y")
    X, y = validate_data(
        estimator,
        X,
        y,
        dtype=[np.float64, np.float32],
        order="C",
        y_numeric=True,
        ensure_min_samples=1,
    )
    y = check_array(
        y, ensure_2d=False, dtype=X.dtype, order="C", input_name="y"
    )
    return X, y


def check_predict_data(estimator, X):
    """Validate data for ``predict``: same rules as for fitting, no ``y``."""
    _reject_text(X, "X")
    return validate_data(
        estimator, X, dtype=[np.float64, np.float32], order="C", reset=False
    )
