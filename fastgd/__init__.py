"""fastgd: gradient descent for linear regression at the speed of memory.

Full-batch gradient descent, stochastic gradient descent and mini-batch SGD
are one estimator, :class:`SGDRegressor`, with the batch size as the knob.
The inner loops are Numba kernels; :func:`fit` is the functional entry point.

``SGDRegressor`` builds on scikit-learn's estimator classes, which take about
a second to import; it is loaded on first use, so ``import fastgd`` and
``fastgd.fit`` stay quick.
"""

from ._train import FitResult, fit
from .exceptions import ConvergenceWarning, DivergenceError

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "DivergenceError",
    "FitResult",
    "SGDRegressor",
    "fit",
    "__version__",
]


def __getattr__(name):
    if name == "SGDRegressor":
        from ._sgd import SGDRegressor

        return SGDRegressor
    raise AttributeError(f"module 'fastgd' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
