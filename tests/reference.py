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


def loss_and_slope(loss, r, epsilon=0.1):
    """Per-row loss and slope in the prediction, as fastgd defines them.

    The slope omits the loss's constant factor for "squared_error" (whose
    gradient is 2 r) as the kernels do; see ``gradient_scale``.
    """
    r = np.asarray(r, dtype=np.float64)
    size = np.abs(r)
    if loss in ("squared_error", "l2_norm"):
        return r * r, r
    if loss == "huber":
        inside = size <= epsilon
        value = np.where(inside, 0.5 * r * r, epsilon * (size - 0.5 * epsilon))
        return value, np.where(inside, r, epsilon * np.sign(r))
    excess = np.maximum(size - epsilon, 0.0)
    if loss == "epsilon_insensitive":
        return excess, np.where(size > epsilon, np.sign(r), 0.0)
    return excess**2, 2.0 * np.sign(r) * excess


def gradient_scale(loss, total_weight, norm):
    if loss == "squared_error":
        return 2.0 / total_weight
    if loss == "l2_norm":
        return 1.0 / (total_weight * norm) if norm > 0 else 0.0
    return 1.0 / total_weight


def proximal_step(coef, step, eta, alpha, l1_ratio):
    """``coef`` moved by ``-step`` with the penalty: L2 decay, L1 prox."""
    coef = coef * (1.0 - eta * alpha * (1.0 - l1_ratio)) - step
    threshold = eta * alpha * l1_ratio
    return np.sign(coef) * np.maximum(np.abs(coef) - threshold, 0.0)


def minibatch_epoch(X, y, coef, intercept, order, batch_size, eta, loss, norm,
                    fit_intercept, epsilon=0.1, weights=None, alpha=0.0,
                    l1_ratio=0.0, schedule="constant", power_t=0.25,
                    optimal_t0=0.0, t_start=0):
    """One epoch of mini-batch SGD, a batch at a time with NumPy.

    Returns new ``(coef, intercept, sum of row losses, steps)``; the inputs
    are not modified.
    """
    coef = coef.astype(np.float64).copy()
    intercept = float(intercept)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    weight_mean = w.mean()
    sum_loss = 0.0
    steps = 0
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        r = residual(X[rows], y[rows], coef, intercept)
        value, g = loss_and_slope(loss, r, epsilon)
        value, g = value * w[rows], g * w[rows]
        sum_loss += value.sum()
        steps += 1
        t = t_start + steps
        if schedule == "invscaling":
            step = eta / t**power_t
        elif schedule == "optimal":
            step = eta / (optimal_t0 + t - 1)  # eta is 1 / alpha here
        else:
            step = eta
        scale = step * gradient_scale(loss, len(rows) * weight_mean, norm)
        coef = proximal_step(coef, scale * (X[rows].astype(np.float64).T @ g),
                             step, alpha, l1_ratio)
        if fit_intercept:
            intercept -= scale * g.sum()
    return coef, intercept, sum_loss, steps


def objective(X, y, coef, intercept, loss, epsilon=0.1, alpha=0.0,
              l1_ratio=0.0, weights=None):
    """Weighted mean loss plus penalty, fastgd's definitions."""
    value, _ = loss_and_slope(loss, residual(X, y, coef, intercept), epsilon)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    data = (value @ w) / w.sum()
    if loss == "l2_norm":
        data = np.sqrt(data)
    penalty = alpha * ((1 - l1_ratio) / 2 * coef @ coef
                       + l1_ratio * np.abs(coef).sum())
    return data + penalty


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
