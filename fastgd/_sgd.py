"""``SGDRegressor``: fastgd's training loop as a scikit-learn estimator."""

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._train import PARAMETER_CONSTRAINTS, make_rng, train
from ._validation import (
    check_array,
    check_params,
    check_sample_weight,
    check_X_y,
    count,
)

__all__ = ["SGDRegressor"]


class SGDRegressor(RegressorMixin, BaseEstimator):
    """Linear regression by full-batch, stochastic or mini-batch descent.

    One estimator covers the family: ``batch_size=None`` is full-batch
    gradient descent (every step uses all rows), ``batch_size=1`` is
    stochastic gradient descent (every step uses one row), and any other
    ``batch_size`` is mini-batch SGD. Parameter names and meanings follow
    ``sklearn.linear_model.SGDRegressor`` where it has the same option, so the
    import can be swapped.

    Parameters
    ----------
    loss : {"squared_error", "l2_norm", "huber", "epsilon_insensitive", \
"squared_epsilon_insensitive"}, default="squared_error"
        ``"squared_error"`` minimises the mean squared residual
        ``mean((y - X coef - b)**2)``. ``"l2_norm"`` minimises its square root,
        the root mean square of the residual; both have the same minimiser but
        different steps (see Notes). The other three are scikit-learn's
        losses with its definitions: Huber (``r**2 / 2`` within ``epsilon``,
        linear beyond), epsilon-insensitive (``max(0, |r| - epsilon)``) and
        its square.
    penalty : {None, "l2", "l1", "elasticnet"}, default=None
        Regularisation added to the mean loss: ``alpha * ((1 - rho) / 2 *
        ||coef||_2**2 + rho * ||coef||_1)`` with ``rho`` 0, 1 or
        ``l1_ratio``. The intercept is not penalised. The L1 part is applied
        by its proximal step (soft-thresholding) after each update, so
        coefficients reach exactly zero. Unlike scikit-learn, whose default
        is ``"l2"``, no penalty is the default: fastgd's core job is least
        squares.
    alpha : float, default=0.0001
        Strength of the penalty, >= 0; also sets the ``"optimal"`` schedule.
    l1_ratio : float, default=0.15
        L1 share of the ``"elasticnet"`` penalty, in [0, 1].
    epsilon : float, default=0.1
        Width of the quadratic zone of ``"huber"`` and of the insensitive
        zone of the epsilon-insensitive losses, >= 0.
    average : bool or int, default=False
        Averaged SGD: report the mean of the iterates instead of the last
        one. ``True`` averages from the first update; an integer ``N``
        from the update after which ``N`` rows have been seen (as in
        scikit-learn: ``average=1`` is ``True``). The
        training loss in ``loss_curve_`` is that of the iterates.
    batch_size : int or None, default=1
        Rows per update step: ``None`` for full batch, 1 for plain SGD, any
        other integer in [1, n_samples] for mini-batches. A ``batch_size``
        equal to ``n_samples`` runs full-batch descent.
    learning_rate : {"constant", "invscaling", "optimal", "adaptive", \
"auto"}, default="constant"
        Step-size schedule over update steps ``t = 1, 2, ...`` (counted
        across epochs): ``"constant"`` uses ``eta0``; ``"invscaling"``
        ``eta0 / t**power_t``; ``"optimal"`` ``1 / (alpha * (t0 + t - 1))``
        with scikit-learn's heuristic ``t0``; ``"adaptive"`` keeps ``eta0``
        until ``n_iter_no_change`` epochs fail to improve by ``tol``, then
        divides it by 5, and stops once it would fall below 1e-6.
        ``"auto"`` (fastgd's own; ``eta0`` is ignored) derives the step from
        the data's Lipschitz constant: ``1 / L`` for full batch, where
        descent cannot diverge, and for mini-batches the step that
        guarantees progress on average. With ``loss="l2_norm"``, whose
        curvature grows as the residual shrinks, the step is retaken at the
        current RMS every step (full batch) or epoch (mini-batches).
        scikit-learn's default is ``"invscaling"``.
    eta0 : float, default=0.01
        Initial (or constant) step size; must be > 0.
    power_t : float, default=0.25
        Exponent of ``"invscaling"``.
    max_iter : int, default=1000
        Maximum number of epochs (passes over the data). For full batch an
        epoch is one step.
    tol : float or None, default=1e-3
        Stop once the epoch's training loss has failed to improve on the best
        so far by at least ``tol`` for ``n_iter_no_change`` consecutive
        epochs. ``None`` runs exactly ``max_iter`` epochs.
    n_iter_no_change : int, default=5
        Epochs without improvement tolerated before stopping.
    shuffle : bool, default=True
        Reshuffle the row order every epoch (stochastic modes only). The rows
        are visited through a permuted index array; X is never reordered.
        ``shuffle=False`` is ``sampling="sequential"``.
    sampling : {"reshuffle", "block_shuffle", "shuffle_once", \
"with_replacement", "sequential"}, default="reshuffle"
        The row order of stochastic epochs. ``"reshuffle"`` draws a new
        permutation every epoch; ``"shuffle_once"`` draws one and keeps it;
        ``"with_replacement"`` draws every row of the epoch independently;
        ``"sequential"`` visits the rows in order. ``"block_shuffle"``
        draws, every epoch, a random order of runs of ``block_size``
        neighbouring rows (cut at a random offset), so the rows of X are
        read in stretches; on data larger than the cache an epoch then
        takes well under the time of a ``"reshuffle"`` one (0.5 to 0.6 of
        it at b = 32 on 1,000,000 x 32 float64, see the README), at a
        statistical price: each row is still visited once per epoch and
        each batch's expected gradient is still the full one, but the rows
        of a run are not independent draws. A batch's gradient variance
        is scaled by the runs' design effect: about 1 for rows in no
        particular order, up to ``block_size`` when neighbouring rows are
        alike (data sorted by time, target or group), below 1 when they
        alternate. With ``batch_size < block_size``, consecutive steps see
        neighbouring rows. Use it on data in no particular order, or
        shuffle the rows once beforehand.
    block_size : int, default=16
        Rows per run for ``sampling="block_shuffle"`` (ignored otherwise);
        1 gives a plain permutation, and a value of at least the number of
        training rows one run: the rows in storage order from a random
        start. 16 rows of 32 float64 features fill 4 KiB, a memory page.
    random_state : int, numpy Generator or RandomState, or None, default=None
        Seed of the row shuffling. A fixed value gives identical coefficients
        on every run and at every thread count.
    fit_intercept : bool, default=True
        Fit an intercept. It is handled inside the kernels; no column of ones
        is added to X.
    verbose : int, default=0
        Print one line per epoch (epoch, loss, step size, elapsed time) when
        above 0.
    warm_start : bool, default=False
        Start from the previous fit's ``coef_`` and ``intercept_``.
    n_jobs : int or None, default=None
        Threads for the parallel kernels; ``None`` keeps Numba's current
        setting, ``-1`` takes all the threads Numba started with, and larger
        counts are capped to that. Results do not depend on it.
    progress : {"auto", True, False}, default="auto"
        A progress bar over the epochs on standard error (tqdm). ``"auto"``
        shows it only for fits still running after 2 seconds, when standard
        error is a terminal, ``verbose`` is 0 and tqdm is installed;
        ``True`` always (tqdm required), ``False`` never. It changes
        nothing in the fit.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Coefficients, in the dtype of the training data; one row per target
        when ``y`` was 2-D.
    intercept_ : float or ndarray of shape (n_targets,)
        Intercept (0.0 when ``fit_intercept=False``); one per target when
        ``y`` was 2-D.
    n_iter_ : int
        Epochs run by the last call to ``fit``.
    t_ : int
        Update steps taken by the last call to ``fit`` (one per batch). Unlike
        scikit-learn's attribute of the same name it has no offset of 1.
    loss_curve_ : ndarray of shape (n_iter_,)
        Training loss per epoch: for full batch, the loss at the start of the
        epoch's step; for stochastic modes, the mean over the epoch of each
        row's loss at the coefficients in force when its batch was used.
        ``"l2_norm"`` records the root of that mean. With ``average`` it is
        the loss of the iterates, not of the averaged ``coef_``.
    n_features_in_ : int
        Number of features seen during fit.

    Raises
    ------
    DivergenceError
        From ``fit``, when the loss becomes non-finite or grows past
        ``1e8`` times its starting value. The estimator then holds the
        coefficients of the last epoch that was still finite.

    Notes
    -----
    With residual ``r = X coef + b - y`` over a batch ``B`` of ``m`` rows, one
    step is

    - squared error: ``coef <- coef - eta0 * (2 / m) * X_B^T r_B``;
    - L2 norm: ``coef <- coef - eta0 * X_B^T r_B / (m * s)``,

    and the same with ``sum(r_B)`` in place of ``X_B^T r_B`` for the
    intercept. In full-batch mode ``s`` is the root mean square residual at
    the current coefficients, ``sqrt(mean(r**2))``, which makes the step the
    exact gradient of the RMS. When the residual is exactly zero the RMS is
    at its minimum and not differentiable; fastgd takes the zero subgradient
    and the step leaves the coefficients unchanged. Near such a point the RMS
    gradient does not shrink (it has length of order one however small the
    residual), so constant-step descent on data that a linear model fits
    exactly ends up oscillating at a distance of order ``eta0``; use
    ``"squared_error"`` there.

    For mini-batches the batch's own RMS would be a biased choice of ``s``:
    the norm does not separate over rows, ``E[1 / s_B] != 1 / s``, and with
    ``batch_size=1`` the step would become ``sign(r_i) x_i``, the gradient of
    the mean *absolute* residual, whose minimiser is a different (median)
    regression. fastgd therefore scales every step of an epoch by one fixed
    ``s``: the full-data RMS at the initial coefficients for the first epoch
    (one extra pass over X), then the RMS accumulated during the previous
    epoch. The step is then an unbiased estimate of the full-batch L2-norm
    gradient taken with that ``s``, and its fixed points are those of the
    squared error.

    fastgd's squared loss is the plain mean squared residual; scikit-learn's
    carries a factor 1/2, so its gradient is half of fastgd's and an
    ``eta0`` carried over from scikit-learn should be halved.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd import SGDRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    >>> model = SGDRegressor(batch_size=None, eta0=0.2, tol=None, max_iter=300)
    >>> model.fit(X, y).coef_.round(3)
    array([ 1. , -2. ,  0.5])
    >>> round(model.intercept_, 3)
    3.0
    """

    def __init__(
        self,
        *,
        loss="squared_error",
        penalty=None,
        alpha=0.0001,
        l1_ratio=0.15,
        epsilon=0.1,
        batch_size=1,
        learning_rate="constant",
        eta0=0.01,
        power_t=0.25,
        max_iter=1000,
        tol=1e-3,
        n_iter_no_change=5,
        average=False,
        early_stopping=False,
        validation_fraction=0.1,
        shuffle=True,
        sampling="reshuffle",
        block_size=16,
        random_state=None,
        fit_intercept=True,
        verbose=0,
        warm_start=False,
        n_jobs=None,
        progress="auto",
    ):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.epsilon = epsilon
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.average = average
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.sampling = sampling
        self.block_size = block_size
        self.random_state = random_state
        self.fit_intercept = fit_intercept
        self.verbose = verbose
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.progress = progress

    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        """Fit the linear model by gradient descent.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data. float32 and float64 are used as given (never
            cast to the other); other numeric types become float64.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets, converted to the dtype of ``X``. A 2-D ``y`` fits one
            model per column, all in the same passes over ``X`` (each
            target's coefficients are those a fit on that column alone would
            give, bit for bit); ``coef_`` then has a row per target and
            ``predict`` returns a column per target, a column vector
            (n_samples, 1) included.
        coef_init : array-like of shape (n_features,) or \
(n_targets, n_features), default=None
            Starting coefficients; zeros (or, with ``warm_start``, the
            previous fit's) when None.
        intercept_init : float or array-like of shape (n_targets,), \
default=None
            Starting intercept(s).
        sample_weight : array-like of shape (n_samples,), float or None, \
default=None
            Weight of each row in the loss: the objective is the weighted
            mean of the rows' losses, so a weight of 0 is the same as
            dropping the row, and scaling all weights changes nothing. In
            stochastic modes each row's step is scaled by its weight over
            the mean weight, so every step is an unbiased estimate of the
            weighted gradient; the weights follow their rows through every
            shuffle. Must be finite and non-negative with a positive sum.

        Returns
        -------
        self : SGDRegressor
            The fitted estimator.

        Raises
        ------
        ValueError
            If a parameter or the data is invalid (NaN or infinity, text,
            empty input, mismatched lengths, ``batch_size`` above
            ``n_samples``).
        DivergenceError
            If the loss diverges; the estimator keeps the coefficients with
            the lowest measured loss.
        """
        params = self.get_params()
        check_params(params, PARAMETER_CONSTRAINTS)
        previous = (
            (self.coef_, self.intercept_)
            if self.warm_start and hasattr(self, "coef_")
            else None
        )
        # scikit-learn's bookkeeping only (n_features_in_, feature names);
        # the arrays themselves are checked by fastgd's own validation
        validate_data(self, X, y, skip_check_array=True)
        X, y = check_X_y(X, y)
        weights = check_sample_weight(sample_weight, len(X))
        coef, intercept = _start(X.shape[1], y, coef_init, intercept_init, previous)

        rng = make_rng(self.random_state)
        self._rng = rng
        train(
            X,
            y,
            params,
            coef=coef,
            intercept=intercept,
            weights=weights,
            rng=rng,
            on_stop=lambda run: self._store(run, X.dtype),
        )
        return self

    def partial_fit(self, X, y, sample_weight=None):
        """Run one epoch over the given rows, continuing from the last state.

        One call makes one pass over ``X`` in batches of ``batch_size`` (in a
        new random order unless ``sampling="sequential"``), starting from
        the current ``coef_`` and ``intercept_`` (zeros on the first call),
        and continues the step-size schedule from ``t_`` update steps. It
        applies no stopping rule: ``tol``, ``max_iter``, ``early_stopping``
        and the adaptive schedule's reductions are left to the caller. The
        random orders come from the same stream as ``fit``'s, so ``k``
        calls on the same data after ``fit(..., max_iter=1)`` or from
        scratch give the coefficients that ``fit`` with ``max_iter=k`` and
        ``tol=None`` gives, bit for bit (``"shuffle_once"`` excepted, which
        draws anew each call). ``n_iter_`` counts the calls' epochs and
        ``loss_curve_`` grows by one entry per call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows; the number of features must stay the same.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets, shaped as in the first call.
        sample_weight : array-like of shape (n_samples,), float or None, \
default=None
            Weight of each row (see ``fit``).

        Returns
        -------
        self : SGDRegressor
            The updated estimator.
        """
        params = self.get_params()
        check_params(params, PARAMETER_CONSTRAINTS)
        first = not hasattr(self, "coef_")
        validate_data(self, X, y, skip_check_array=True, reset=first)
        X, y = check_X_y(X, y)
        weights = check_sample_weight(sample_weight, len(X))
        if first:
            coef, intercept = _start(X.shape[1], y, None, None, None)
            self._rng = make_rng(self.random_state)
            done = (0, 0, np.empty(0), {})
        else:
            # continue from the last iterate, which averaging keeps apart
            # from the averaged coef_
            last = getattr(self, "_iterate", (self.coef_, self.intercept_))
            coef, intercept = _start(
                X.shape[1], y, *last, None, source="the fit partial_fit continues"
            )
            done = (self.n_iter_, self.t_, self.loss_curve_, self.history_)
        average = getattr(self, "_average_state", None) if not first else None
        norm = getattr(self, "_norm", None) if not first else None
        train(
            X,
            y,
            params,
            coef=coef,
            intercept=intercept,
            weights=weights,
            rng=self._rng,
            t_start=done[1],
            average=None if average is None else average.copy(),
            partial=True,
            norm=norm,
            on_stop=lambda run: self._store(run, X.dtype, done),
        )
        return self

    def _store(self, run, dtype, done=(0, 0, (), None)):
        """Copy the state of a finished (or interrupted) run to attributes.

        ``done`` holds the epochs, steps, loss curve and history of earlier
        ``partial_fit`` calls, which this run continues.
        """
        epochs, steps, curve, history = done
        coef, intercept = run.solution()
        self.coef_ = coef.astype(dtype)
        if coef.ndim == 1:
            self.intercept_ = float(intercept[0])
            self._iterate = (run.coef.copy(), float(run.intercept[0]))
        else:
            self.intercept_ = intercept.astype(dtype)
            self._iterate = (run.coef.copy(), run.intercept.copy())
        self._average_state = None if run.average is None else run.average.copy()
        self._norm = None if run.norm is None else run.norm.copy()
        self.n_iter_ = epochs + run.epoch
        self.t_ = steps + run.steps
        self.loss_curve_ = np.concatenate(
            [np.asarray(curve, dtype=np.float64), np.asarray(run.losses, dtype=np.float64)]
        )
        self.history_ = {
            "loss": self.loss_curve_,
            **{
                key: np.concatenate(
                    [np.asarray((history or {}).get(key, []), dtype=np.float64),
                     np.asarray(values, dtype=np.float64)]
                )
                for key, values in run.history.items()
            },
        }
        if "validation_score" in run.history:
            self.validation_scores_ = self.history_["validation_score"]
        self._converged = run.converged

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X):
        """Predict with the fitted linear model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            ``X @ coef_.T + intercept_``, in the dtype of ``X``; a column
            per target if the model was fitted to a 2-D ``y``.
        """
        check_is_fitted(self)
        # the array check first, so a 1-D X gets its "reshape" hint; the
        # feature-name check needs the caller's X, not the array
        array = check_array(X, "X", ndim=2)
        validate_data(self, X, skip_check_array=True, reset=False)
        X = array
        coef = self.coef_.astype(X.dtype)
        return X @ coef.T + np.asarray(self.intercept_, dtype=X.dtype)


def _brief(value, limit=60):
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _start(n_features, y, coef, intercept, previous, source="coef_init"):
    """Float64 starting ``coef`` and ``intercept`` arrays, checked.

    ``y`` (checked) tells the number of targets: shapes (n_features,) and
    (1,) for a 1-D ``y``, (n_targets, n_features) and (n_targets,) for a 2-D
    one. ``coef``/``intercept`` come from the caller (``coef_init``, or the
    fitted state, named by ``source`` in errors); ``previous`` is a warm
    start's ``(coef_, intercept_)``.
    A starting point of another shape is refused here, before any kernel
    could read past its end.
    """
    shape = (n_features,) if y.ndim == 1 else (y.shape[1], n_features)
    if coef is None and previous is not None:
        source = "the previous fit (warm_start)"
        coef = previous[0]
        if intercept is None:
            intercept = previous[1]
    if coef is None:
        coef = np.zeros(shape)
    try:
        coef = np.array(coef, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{source} must be an array of numbers, got {_brief(coef)}."
        ) from None
    if coef.shape != shape:
        wanted = (
            f"y has 1 target and X {n_features} features, so shape {shape} is "
            "needed"
            if y.ndim == 1
            else f"y has {count(shape[0], 'target')} and X {n_features} features, "
            f"so shape {shape} is needed"
        )
        raise ValueError(
            f"The starting coefficients from {source} have shape {coef.shape}, "
            f"but {wanted}."
        )
    n_targets = 1 if y.ndim == 1 else shape[0]
    try:
        intercept = np.array(0.0 if intercept is None else intercept, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"intercept_init must be a number or an array of numbers, got "
            f"{_brief(intercept)}."
        ) from None
    if intercept.size not in (1, n_targets) or intercept.ndim > 1:
        raise ValueError(
            f"intercept_init has shape {intercept.shape}; y has "
            f"{count(n_targets, 'target')}, so "
            + ("a number is needed." if n_targets == 1
               else f"a number or {n_targets} numbers are needed.")
        )
    intercept = np.broadcast_to(intercept.reshape(-1), (n_targets,)).copy()
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
        raise ValueError("coef_init and intercept_init must be finite.")
    return np.ascontiguousarray(coef), intercept
