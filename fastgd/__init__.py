"""fastgd: gradient descent for linear regression at the speed of memory.

Full-batch gradient descent, stochastic gradient descent and mini-batch SGD
are one estimator, :class:`SGDRegressor`, with the batch size as the knob.
The inner loops are Numba kernels; :func:`fit` is the functional entry point.
"""

from ._sgd import FitResult, SGDRegressor, fit
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
