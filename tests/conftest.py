import pytest
from reference import make_regression


@pytest.fixture
def seed():
    return 20261203


@pytest.fixture
def problem(seed):
    """500 x 5 float64, noise 0.1, intercept 1.5."""
    return make_regression(500, 5, seed)
