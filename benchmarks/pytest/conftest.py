"""pytest-benchmark suite for fastgd: fastgd next to its baselines.

Not part of the normal test run (``testpaths`` is ``tests``). Run with::

    python -m pytest benchmarks/pytest --benchmark-autosave
    python -m pytest benchmarks/pytest --fastgd-profile smoke   # seconds

The problems come from ``benchmarks/common.py``, the same as asv's.
"""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import common  # noqa: E402


def pytest_addoption(parser):
    group = parser.getgroup("fastgd benchmarks")
    group.addoption(
        "--fastgd-profile",
        default=None,
        choices=sorted(common.PROFILES),
        help=(
            "problem sizes: smoke, quick (default) or full; defaults to "
            f"${common.PROFILE_ENV} or quick"
        ),
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "fastgd_perf: a fastgd performance benchmark (not a test)"
    )


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.fastgd_perf)


@pytest.fixture(scope="session")
def profile(request):
    return common.get_profile(request.config.getoption("--fastgd-profile"))


@pytest.fixture(scope="session")
def problem64(profile):
    return common.make_problem(profile.n_samples[-1], profile.n_features, "float64")


@pytest.fixture(scope="session")
def problem32(profile):
    return common.make_problem(profile.n_samples[-1], profile.n_features, "float32")


@pytest.fixture(scope="session")
def problem_cache(profile):
    return common.make_problem(profile.n_cache, profile.n_features, "float64")


@pytest.fixture
def threads(request):
    """Numba thread count from the test's ``threads`` param, restored after."""
    from benchmarks import fastgd_calls

    previous = fastgd_calls.set_threads(request.param)
    yield request.param
    fastgd_calls.set_threads(previous)
