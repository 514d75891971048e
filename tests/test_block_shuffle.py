"""``sampling="block_shuffle"``: its orders, its unbiasedness and its price.

Block shuffling visits runs of neighbouring rows in a random order, which
the memory system serves faster than rows scattered at random (issue 3,
target 5). What it gives up is measured here: on data whose neighbouring
rows are alike, a batch's gradient is noisier by the design effect of the
runs, computed from the data alone and then checked against the variance
of batch gradients taken in the orders the kernel draws.
"""

import numpy as np
import pytest
import reference

from fastgd import SGDRegressor, _engine


def _block_order(n, seed, block_size, rows=None):
    order = np.empty(n if rows is None else len(rows), dtype=np.intp)
    _engine.draw_order(order, seed, rows, block_size=block_size)
    return order


def _is_block_order(positions, n, block_size):
    """Whether ``positions`` lists the runs of some rotation of 0..n-1.

    For some offset ``s``, cutting ``0 .. n - 1`` into runs of
    ``block_size`` (the last one shorter) and adding ``s`` modulo ``n``
    must give exactly the pieces ``positions`` is made of, each visited
    from first to last.
    """
    for offset in range(n):
        p = (positions - offset) % n
        starts = np.flatnonzero(p % block_size == 0)
        if len(starts) == 0 or starts[0] != 0:
            continue
        pieces = np.split(p, starts[1:])
        if all(
            np.array_equal(piece, np.arange(piece[0], min(piece[0] + block_size, n)))
            for piece in pieces
        ):
            return True
    return False


@pytest.mark.parametrize(
    "n, block_size", [(10, 4), (64, 16), (300, 16), (7, 7), (5, 16), (1, 3)]
)
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_every_row_once_in_runs_of_block_size(n, block_size, seed):
    order = _block_order(n, seed, block_size)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    assert _is_block_order(order, n, block_size)


def test_a_plain_permutation_is_not_taken_for_a_block_order():
    # the check above can fail
    assert not _is_block_order(_block_order(64, 0, 1), 64, 16)


def test_candidate_subset_is_cut_into_runs_of_its_own_entries():
    rows = np.array([1, 4, 5, 6, 9, 12, 13, 20], dtype=np.intp)
    order = _block_order(0, 7, 3, rows=rows)
    np.testing.assert_array_equal(np.sort(order), rows)
    assert _is_block_order(np.searchsorted(rows, order), len(rows), 3)


def test_order_depends_on_seed_and_block_size_alone():
    first = _block_order(100, 5, 8)
    buffer = np.full(100, -1, dtype=np.intp)
    _engine.draw_order(buffer, 5, block_size=8)
    np.testing.assert_array_equal(buffer, first)
    assert not np.array_equal(_block_order(100, 6, 8), first)
    assert not np.array_equal(_block_order(100, 5, 4), first)


def test_block_size_one_is_the_plain_permutation():
    plain = np.empty(50, dtype=np.intp)
    _engine.draw_order(plain, 9)
    np.testing.assert_array_equal(_block_order(50, 9, 1), plain)


def test_each_position_holds_each_row_equally_often():
    # The runs are cut at an offset uniform over the whole circle, so the
    # short run is no more likely at one place than another and every
    # position holds every row with probability 1/n: each batch's expected
    # gradient is the full gradient. (An offset drawn from 0..block_size-1
    # would put row 0 first with probability 1/6 here instead of 1/10.)
    n, block_size, draws = 10, 4, 20_000
    counts = np.zeros((n, n))
    for seed in range(draws):
        counts[np.arange(n), _block_order(n, seed, block_size)] += 1
    expected = draws / n
    # binomial sd is about 42; 5 sd
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected * (1 - 1 / n))


def _design_effect(values, block_size):
    """Variance of run means over that of single rows, times the run length.

    About 1 when neighbouring rows are unrelated, about ``block_size`` when
    the rows of a run are alike; computed from the data, not from orders.
    """
    n = len(values) - len(values) % block_size
    runs = values[:n].reshape(-1, block_size, values.shape[1])
    between = runs.mean(axis=1).var(axis=0).sum()
    return block_size * between / values.var(axis=0).sum()


def _batch_gradient_variance(grads, batch_size, sampling, epochs=60):
    n = len(grads)
    means = []
    for seed in range(epochs):
        order = np.empty(n, dtype=np.intp)
        if sampling == "block_shuffle":
            _engine.draw_order(order, seed, block_size=16)
        else:
            _engine.draw_order(order, seed)
        batches = grads[order].reshape(-1, batch_size, grads.shape[1])
        means.append(batches.mean(axis=1))
    return np.concatenate(means).var(axis=0).sum()


@pytest.mark.parametrize("arrangement", ["random", "sorted"])
def test_batch_gradient_variance_grows_by_the_design_effect(arrangement):
    n, batch_size, block_size = 4096, 32, 16
    X, y = reference.make_regression(n, 3, 5)
    if arrangement == "sorted":
        order = np.argsort(y)
        X, y = X[order], y[order]
    # per-row gradients of the squared loss at coef = 0 (fit_intercept off)
    grads = -2.0 * X * y[:, None]

    predicted = _design_effect(grads, block_size)
    measured = _batch_gradient_variance(
        grads, batch_size, "block_shuffle"
    ) / _batch_gradient_variance(grads, batch_size, "reshuffle")

    if arrangement == "random":
        assert predicted == pytest.approx(1.0, abs=0.2)
    else:
        assert predicted > 4.0  # alike neighbours: the price is real
    # 7,680 batches per estimate: the ratio is good to a few percent
    assert measured == pytest.approx(predicted, rel=0.15)


def test_alternating_neighbours_make_batches_less_variable():
    # Each odd row mirrors the row before it about the mean, so a run's
    # rows cancel in pairs: the design effect is 0 on runs cut at even
    # offsets, and the batches a fit draws (cut at any offset, so some runs
    # split a pair) vary far less than batches of independent rows.
    X, y = reference.make_regression(4096, 3, 5)
    grads = -2.0 * X * y[:, None]
    grads[1::2] = 2.0 * grads.mean(axis=0) - grads[0::2]

    assert _design_effect(grads, 16) < 1e-12
    measured = _batch_gradient_variance(
        grads, 32, "block_shuffle"
    ) / _batch_gradient_variance(grads, 32, "reshuffle")
    assert measured < 0.2


def _orders_of_a_fit(monkeypatch, X, y, params, sample_weight=None):
    """The index arrays a fit hands to the epoch kernel, one per epoch."""
    seen = []
    epoch = _engine.stochastic_epoch

    def spy(X, y, coef, intercept, order, *args, **kwargs):
        seen.append(order.copy())
        return epoch(X, y, coef, intercept, order, *args, **kwargs)

    monkeypatch.setattr(_engine, "stochastic_epoch", spy)
    model = SGDRegressor(**params).fit(X, y, sample_weight=sample_weight)
    return model, seen


# three epochs of b = 8, the fit the tests below watch or compare
SHORT_FIT = dict(batch_size=8, eta0=0.01, max_iter=3, tol=None, random_state=2)


def test_fit_visits_rows_in_block_orders(monkeypatch, problem):
    X, y = problem
    params = dict(SHORT_FIT, sampling="block_shuffle", block_size=16)
    _, orders = _orders_of_a_fit(monkeypatch, X, y, params)
    assert len(orders) == 3
    for order in orders:
        assert _is_block_order(order, len(X), 16)
    # a new order every epoch
    assert not np.array_equal(orders[0], orders[1])


def test_block_size_changes_nothing_else(problem):
    X, y = problem
    plain = SGDRegressor(**SHORT_FIT).fit(X, y)
    # runs of one row are the plain permutation, bit for bit
    one = SGDRegressor(**SHORT_FIT, sampling="block_shuffle", block_size=1).fit(X, y)
    np.testing.assert_array_equal(one.coef_, plain.coef_)
    # block_size means nothing to the other samplings
    other = SGDRegressor(**SHORT_FIT, block_size=4).fit(X, y)
    np.testing.assert_array_equal(other.coef_, plain.coef_)


@pytest.mark.parametrize(
    "huge", [2**62, 2**63 - 1, 2**63, 10**30, np.uint64(2**64 - 1)]
)
def test_runs_longer_than_the_data_are_the_whole_data(problem, huge):
    # A run can hold at most every row: any longer block_size, even one past
    # int64, draws the order block_size == n draws (one rotation of 0..n-1).
    n = 300
    np.testing.assert_array_equal(_block_order(n, 4, huge), _block_order(n, 4, n))
    assert _is_block_order(_block_order(n, 4, huge), n, n)

    X, y = problem
    params = dict(SHORT_FIT, sampling="block_shuffle")
    whole = SGDRegressor(**params, block_size=len(X)).fit(X, y)
    model = SGDRegressor(**params, block_size=huge).fit(X, y)
    np.testing.assert_array_equal(model.coef_, whole.coef_)


def test_block_shuffle_leaves_held_out_rows_out(monkeypatch, problem):
    X, y = problem
    weights = np.ones(len(X))
    weights[::7] = 0.0  # rows of weight 0 take no part in the orders either
    params = dict(
        batch_size=8,
        sampling="block_shuffle",
        block_size=8,
        early_stopping=True,
        validation_fraction=0.2,
        eta0=0.01,
        max_iter=30,
        random_state=0,
    )
    model, seen = _orders_of_a_fit(monkeypatch, X, y, params, weights)

    train = np.sort(seen[0])
    assert len(train) < 0.8 * len(X) and not np.any(weights[train] == 0)
    for order in seen:
        np.testing.assert_array_equal(np.sort(order), train)
        assert _is_block_order(np.searchsorted(train, order), len(train), 8)
    coef, _ = reference.lstsq(X, y)
    np.testing.assert_allclose(model.coef_, coef, atol=0.05)
