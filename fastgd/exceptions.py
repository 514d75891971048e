"""Warnings and errors raised by fastgd."""

__all__ = ["ConvergenceWarning", "DivergenceError"]


class ConvergenceWarning(UserWarning):
    """The fit stopped at ``max_iter`` before the ``tol`` criterion was met."""


class DivergenceError(ArithmeticError):
    """The training loss became non-finite or grew without bound.

    The estimator keeps the coefficients of the last epoch whose loss was
    finite. ``epoch`` is the 1-based epoch in which divergence was seen and
    ``loss`` the loss value that triggered it.
    """

    def __init__(self, message, *, epoch, loss):
        super().__init__(message)
        self.epoch = epoch
        self.loss = loss
