"""Slow, obviously correct NumPy versions of fastgd's kernels (test-only)."""

import numpy as np


def residual(X, y, coef, intercept):
    """``X @ coef + intercept - y`` in float64."""
    X = X.astype(np.float64)
    return X @ coef + intercept - y.astype(np.float64)


def residual_sums(X, y, coef, intercept):
    """``[X^T r, sum(r), sum(r**2)]`` as one float64 vector."""
    r = residual(X, y, coef, intercept)
    return np.concatenate([X.astype(np.float64).T @ r, [r.sum(), r @ r]])


def rms(X, y, coef, intercept):
    """Root mean square of the residual: the ``"l2_norm"`` loss."""
    r = residual(X, y, coef, intercept)
    return np.sqrt(np.mean(r * r))


def mse(X, y, coef, intercept):
    """Mean squared residual: the ``"squared_error"`` loss."""
    r = residual(X, y, coef, intercept)
    return np.mean(r * r)


def minibatch_epoch(X, y, coef, intercept, order, batch_size, eta, loss, norm,
                    fit_intercept):
    """One epoch of mini-batch SGD, a batch at a time with NumPy.

    Returns new ``(coef, intercept, sum_r2, steps)``; the inputs are not
    modified.
    """
    coef = coef.astype(np.float64).copy()
    intercept = float(intercept)
    sum_r2 = 0.0
    steps = 0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        r = residual(X[rows], y[rows], coef, intercept)
        sum_r2 += r @ r
        if loss == "squared_error":
            scale = 2.0 / len(rows)
        else:
            scale = 1.0 / (len(rows) * norm) if norm > 0 else 0.0
        coef -= eta * scale * (X[rows].astype(np.float64).T @ r)
        if fit_intercept:
            intercept -= eta * scale * r.sum()
        steps += 1
    return coef, intercept, sum_r2, steps


def lstsq(X, y, fit_intercept=True):
    """Least-squares ``(coef, intercept)`` from ``numpy.linalg.lstsq``."""
    X = X.astype(np.float64)
    if fit_intercept:
        X = np.column_stack([X, np.ones(len(X))])
    solution = np.linalg.lstsq(X, y.astype(np.float64), rcond=None)[0]
    if fit_intercept:
        return solution[:-1], solution[-1]
    return solution, 0.0


def make_regression(n_samples, n_features, seed, noise=0.1, dtype=np.float64):
    """A well-conditioned problem: standard normal X, known coefficients."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    coef = rng.uniform(-2.0, 2.0, n_features)
    y = X @ coef + 1.5 + noise * rng.standard_normal(n_samples)
    return X.astype(dtype), y.astype(dtype)
