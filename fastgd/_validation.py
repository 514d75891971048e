"""Checks of parameters and arrays at fastgd's public boundary.

Kernels never check anything; everything they assume is established here.
Parameter rules are data: ``PARAMETER_CONSTRAINTS`` in ``_sgd.py`` maps each
parameter to the constraints below, and ``check_params`` applies them.
"""

import numbers

import numpy as np


class Options:
    """The value must be one of a fixed set (usually of strings)."""

    def __init__(self, *values):
        self.values = values

    def accepts(self, value):
        return isinstance(value, str) and value in self.values

    def __str__(self):
        if len(self.values) == 1:
            return repr(self.values[0])
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
        if not isinstance(value, numbers.Real):
            return False
        if not isinstance(value, numbers.Integral) and not np.isfinite(value):
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
        if self.low is None and self.high is None:
            return kind
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{kind} in {left}{low}, {high}{right}"


class Boolean:
    """``True`` or ``False`` (numpy booleans included)."""

    def accepts(self, value):
        return isinstance(value, (bool, np.bool_))

    def __str__(self):
        return "a bool"


class AllThreads:
    """``-1``, scikit-learn's "all processors": all of Numba's threads."""

    def accepts(self, value):
        return (
            isinstance(value, numbers.Integral)
            and not isinstance(value, (bool, np.bool_))
            and value == -1
        )

    def __str__(self):
        return "-1 (all threads)"


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


def count(n, noun):
    """``"1 row"``, ``"2 rows"``: a count with its noun, for messages."""
    n = int(n)
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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
    # numpy dtypes and pandas' nullable ones (Int64, Float64, boolean) have
    # a kind; strings, categoricals and objects do not pass
    return getattr(dtype, "kind", "O") in "biuf"


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


def _is_sparse(X):
    return hasattr(X, "nnz") and hasattr(X, "toarray")


def check_array(X, name, ndim, dtype=None):
    """Return ``X`` as a C-contiguous float array with ``ndim`` dimensions.

    ``dtype=None`` keeps float32 and float64 as given and turns any other
    numeric type into float64. Text, sparse or complex data, the wrong number
    of dimensions, empty input and NaN or infinity raise with a message
    naming ``name``. A copy is made only when the dtype or layout must
    change; ``X`` itself is never written to.
    """
    if X is None:
        raise TypeError(f"{name} is None; an array of numbers is needed.")
    if _is_sparse(X):
        raise TypeError(
            f"{name} is a sparse matrix; fastgd needs dense data "
            f"({name}.toarray())."
        )
    _reject_text(X, name)
    try:
        if hasattr(X, "to_numpy") and getattr(X, "dtypes", None) is not None:
            # pandas: nullable columns become float with NaN for missing,
            # in one conversion to float32 when every column is float32
            single = all(
                getattr(d, "kind", "") == "f" and getattr(d, "itemsize", 8) == 4
                for d in np.atleast_1d(X.dtypes)
            )
            array = X.to_numpy(
                dtype=np.float32 if single else np.float64, na_value=np.nan
            )
        else:
            array = np.asarray(X)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{name} could not be read as an array: {error}") from None
    if array.dtype.kind == "O":
        array = _object_to_float(array, name)
    if array.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} holds complex numbers; fastgd "
            "needs real data."
        )
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} is not numeric (dtype {array.dtype}).")
    if dtype is None:
        dtype = array.dtype if array.dtype.kind == "f" and array.itemsize in (4, 8) else np.float64
    if array.ndim != ndim:
        hint = (
            " Reshape your data: X.reshape(-1, 1) for a single feature, "
            "X.reshape(1, -1) for a single sample."
            if ndim == 2
            else ""
        )
        raise ValueError(
            f"{name} must be {ndim}-D, got an array of shape {array.shape}.{hint}"
        )
    if array.shape[0] == 0:
        raise ValueError(
            f"{name} has 0 samples (shape {array.shape}); at least 1 is needed."
        )
    if ndim == 2 and array.shape[1] == 0:
        # worded as scikit-learn words it, which its estimator checks expect
        raise ValueError(
            f"{name} has 0 feature(s) (shape={array.shape}) while a minimum of 1 "
            "is required."
        )
    array = np.ascontiguousarray(array, dtype=dtype)
    _check_finite(array, name)
    return array


class NonNumericError(ValueError, TypeError):
    """A cell of an object array is not a number.

    A ``ValueError`` like every other complaint about the data, and also the
    ``TypeError`` that NumPy raises for the same conversion (which is what
    scikit-learn's estimator checks expect).
    """


def _object_to_float(array, name):
    """Convert an object array whose cells are all real numbers to float64.

    Object arrays of numbers are common (``DataFrame.to_numpy()`` of mixed
    columns, lists holding ``Decimal``). ``None`` becomes NaN, which the
    finiteness check then reports; anything else (a dict, a complex number)
    raises ``NonNumericError`` naming the column and value. Text was already
    refused by ``_reject_text``.
    """
    try:
        return array.astype(np.float64)
    except (TypeError, ValueError) as error:
        cause = error
    cells = array.reshape(len(array), -1) if array.ndim else array.reshape(1, 1)
    for row in cells:
        for column, value in enumerate(row):
            try:
                float(value)
            except (TypeError, ValueError) as error:
                where = f"{name} column {column}" if array.ndim == 2 else name
                raise NonNumericError(
                    f"{where} holds {value!r}, which is not a number: {error}"
                ) from None
    raise NonNumericError(f"{name} could not be converted to float64: {cause}")


def _check_finite(array, name):
    """Raise if ``array`` holds NaN or infinity, naming which.

    A plain sum is finite for finite data unless it overflows, so the common
    case costs one read of the array and no temporary.
    """
    if np.isfinite(np.sum(array, dtype=np.float64)):
        return
    flat = array.reshape(-1)
    step = 1 << 20
    for start in range(0, flat.size, step):
        block = flat[start : start + step]
        if np.isnan(block).any():
            raise ValueError(f"{name} contains NaN.")
        if np.isinf(block).any():
            raise ValueError(f"{name} contains infinity.")


def check_X_y(X, y):
    """Validate training data; return C-contiguous ``X`` and ``y``.

    ``X`` keeps float32 or float64 as given (other numeric types become
    float64) and ``y`` takes ``X``'s dtype. ``y`` of shape (n,) is one
    target; of shape (n, k), k targets (a column vector (n, 1) is one target
    kept 2-D, as scikit-learn's multi-output regressors keep it). Lengths
    must match.
    """
    X = check_array(X, "X", ndim=2)
    try:
        y_array = np.asarray(y) if not _is_sparse(y) else y
    except ValueError:  # ragged lists: check_array below names the problem
        y_array = y
    ndim = getattr(y_array, "ndim", 1)
    if ndim not in (1, 2):
        raise ValueError(
            f"y must be 1-D (one target) or 2-D (one column per target), got "
            f"an array of shape {y_array.shape}."
        )
    if ndim == 2 and y_array.shape[1] == 0:
        raise ValueError(f"y has 0 targets (shape {y_array.shape}).")
    y = check_array(y, "y", ndim=ndim, dtype=X.dtype)
    if len(y) != len(X):
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"X has {len(X)} rows, y has {len(y)}."
        )
    return X, y


def check_sample_weight(sample_weight, n_samples):
    """Return ``sample_weight`` as float64 of shape (n_samples,), or None.

    A scalar weighs every row the same. Weights must be finite and
    non-negative with a positive sum; a weight of 0 drops its row.
    """
    if sample_weight is None:
        return None
    # np.isscalar rather than np.ndim: np.ndim dispatches through
    # __array_function__, which array-likes need not implement
    if np.isscalar(sample_weight) or getattr(sample_weight, "ndim", None) == 0:
        sample_weight = np.full(n_samples, sample_weight, dtype=np.float64)
    weights = check_array(sample_weight, "sample_weight", ndim=1, dtype=np.float64)
    if len(weights) != n_samples:
        raise ValueError(
            f"sample_weight has {len(weights)} entries, but X has "
            f"{n_samples} rows."
        )
    if np.any(weights < 0):
        raise ValueError(
            f"sample_weight must be non-negative; it holds {weights.min():g}."
        )
    if not weights.sum() > 0:
        raise ValueError("sample_weight sums to zero: no row would be fitted.")
    return weights
