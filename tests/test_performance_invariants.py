"""Checks of speed-critical properties that cannot flake: no timings here.

The timed side lives in ``benchmarks/`` (asv, pytest-benchmark and the
regression gate ``benchmarks/gate.py``).
"""

import importlib.util
import inspect
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numba
import numpy as np
import pytest
from numba import njit
from numba.core.errors import NumbaPerformanceWarning

from fastgd import _engine, _kernels

ROOT = Path(__file__).resolve().parents[1]

_SIGNATURES_SCRIPT = textwrap.dedent("""
    import json, warnings
    import numpy as np
    import fastgd
    from fastgd import _engine, _kernels

    # let the one-target epochs share their batches between two threads
    _engine.PAIR_MIN_BYTES = _engine.PAIR_MIN_BATCH_BYTES = 0
    _engine.PAIR_MIN_VISITS = 0
    kernels = {name: getattr(_kernels, name) for name in (
        "_residual_sums", "_residual_sums_serial", "_minibatch_epoch",
        "_minibatch_epoch_targets", "_minibatch_epoch_pair", "_draw_order",
        "_gradient_scale", "_step_size", "_update")}
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(2):
        for dtype in (np.float64, np.float32):
            for n_samples in (200, 5_000):  # serial and threaded passes
                X = rng.standard_normal((n_samples, 8)).astype(dtype)
                y = X.sum(axis=1)
                targets = np.column_stack([y, -y])
                for batch_size in (None, 1, 32):
                    for loss in ("squared_error", "l2_norm"):
                        for target in (y, targets):
                            fastgd.fit(X, target, batch_size=batch_size,
                                       loss=loss, eta0=0.001, max_iter=2,
                                       tol=None, random_state=1)
        counts.append({name: len(k.signatures) for name, k in kernels.items()})
    print(json.dumps(counts))
""")


def test_repeated_fits_compile_nothing_new():
    # a fresh process: earlier tests in this one may have compiled more
    done = subprocess.run([sys.executable, "-c", _SIGNATURES_SCRIPT],
                          capture_output=True, text=True, check=True)
    first, second = json.loads(done.stdout)
    assert first == second, "the second round of fits compiled new signatures"
    # one signature per data dtype (the shuffle and the scale take none;
    # the two-thread kernel needs two Numba threads). Helpers that only
    # kernels call are left out: loaded from the cache, they compile nothing.
    pair = 2 if numba.config.NUMBA_NUM_THREADS >= 2 else 0
    assert first == {"_residual_sums": 2, "_residual_sums_serial": 2,
                     "_minibatch_epoch": 2, "_minibatch_epoch_targets": 2,
                     "_minibatch_epoch_pair": pair, "_draw_order": 1,
                     "_gradient_scale": 1, "_step_size": 1, "_update": 1}


def _prange_lines(function):
    """Source lines of ``function``'s prange loops."""
    source, first = inspect.getsourcelines(function.py_func)
    return {first + k for k, line in enumerate(source) if "prange(" in line}


def _parallel_copy(function):
    return njit(parallel=True, fastmath=_kernels._FASTMATH)(function.py_func)


def _parfor_lines(kernel):
    diagnostics = kernel.get_metadata(kernel.signatures[0])["parfor_diagnostics"]
    return {parfor.loc.line for parfor in diagnostics.get_parfors()}


def test_prange_loops_are_parallelised():
    # cached kernels do not recompile, so compile fresh copies here: Numba
    # reports a prange it had to run serially only as a warning at compile
    # time, and a warning turned into an error must not be raised
    sums = _parallel_copy(_kernels._residual_sums)
    pair = _parallel_copy(_kernels._minibatch_epoch_pair)
    X = np.ones((100, 3))
    settings = np.zeros(_kernels.N_SETTINGS)
    settings[_kernels.WEIGHT_MEAN] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumbaPerformanceWarning)
        sums(X, np.ones((100, 1)), np.empty(0), np.zeros((1, 3)), np.zeros(1),
             0, 0.0, np.empty((1, 5)))
        pair(X, np.ones(100), np.empty(0), np.zeros(3), np.zeros(1),
             np.arange(100), 10, 0, 0, settings, np.ones(1), True, 0, np.empty(0),
             *_engine._pair_buffers(3), 1 << 20, np.empty(3))

    for kernel, source in ((sums, _kernels._residual_sums),
                           (pair, _kernels._minibatch_epoch_pair)):
        lines = _prange_lines(source)
        assert lines and lines <= _parfor_lines(kernel), (lines, source)


_ROW_READS_SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    from fastgd import _engine

    class RecordingRows:
        # stands in for X with NUMBA_DISABLE_JIT=1, logging each row read
        def __init__(self, array):
            self.array, self.shape = array, array.shape
            self.size, self.itemsize = array.size, array.itemsize
            self.rows = []
        def __getitem__(self, index):
            self.rows.append(int(index[0]))
            return self.array[index]

    rng = np.random.default_rng(0)
    for n_samples in (50, 3000):  # serial and threaded passes
        X = RecordingRows(rng.standard_normal((n_samples, 4)))
        _engine.full_batch_step(X, np.zeros(n_samples), np.ones(4),
                                np.zeros(1), 0.1, 0, True)
        # consecutive reads of one row are one visit while it is in cache
        visits = [r for k, r in enumerate(X.rows) if k == 0 or X.rows[k - 1] != r]
        print(json.dumps([n_samples, visits]))
""")


def test_full_batch_step_reads_each_row_of_X_once():
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    done = subprocess.run([sys.executable, "-c", _ROW_READS_SCRIPT], env=env,
                          capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        n_samples, visits = json.loads(line)
        assert sorted(visits) == list(range(n_samples)), (
            "a full-batch step must visit every row of X exactly once"
        )


def test_full_batch_step_is_one_kernel_call(monkeypatch, problem):
    X, y = problem
    calls = []
    for name in ("_residual_sums", "_residual_sums_serial"):
        kernel = getattr(_kernels, name)
        monkeypatch.setattr(
            _kernels, name,
            lambda *args, kernel=kernel: calls.append(1) or kernel(*args),
        )
    _engine.full_batch_step(X, y, np.zeros(5), np.zeros(1), 0.1, 0, True)
    assert len(calls) == 1


def _load_gate():
    spec = importlib.util.spec_from_file_location(
        "fastgd_gate", ROOT / "benchmarks" / "gate.py"
    )
    gate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gate)
    return gate


def test_gate_passes_unchanged_and_fails_on_a_slowed_kernel(
    tmp_path, monkeypatch
):
    # limits measured here and now, as a user's --write would set them; the
    # unchanged kernels must pass them and kernels doing their work twice
    # (a 2x regression) must not
    gate = _load_gate()
    monkeypatch.setattr(gate, "N_SAMPLES", 100_000)
    quiet = lambda *args: None  # noqa: E731
    limits = gate.write_limits(tmp_path / "limits.json", report=quiet)
    # more attempts than the gate's default: a burst of load from another
    # process must not fail the unchanged kernels here either
    assert gate.check(limits, attempts=6, report=quiet)

    def twice(function):
        return lambda *args: (function(*args), function(*args))[1]

    monkeypatch.setattr(_engine, "full_batch_step",
                        twice(_engine.full_batch_step))
    monkeypatch.setattr(_engine, "stochastic_epoch",
                        twice(_engine.stochastic_epoch))
    assert not gate.check(limits, report=quiet)


def test_committed_gate_limits_cover_every_ratio(monkeypatch):
    gate = _load_gate()
    monkeypatch.setattr(gate, "N_SAMPLES", 2_000)
    monkeypatch.setattr(gate, "REPEATS", 1)
    limits = json.loads(gate.LIMITS_FILE.read_text())["limits"]
    assert set(gate.measure()) == set(limits)


def test_gate_refuses_limits_that_do_not_match_the_ratios(monkeypatch):
    # a ratio without a limit would go unchecked, a stale limit would
    # never be measured: both stop the gate with an error naming them
    gate = _load_gate()
    monkeypatch.setattr(gate, "N_SAMPLES", 2_000)
    monkeypatch.setattr(gate, "REPEATS", 1)
    limits = json.loads(gate.LIMITS_FILE.read_text())["limits"]
    missing = dict(list(limits.items())[1:])
    with pytest.raises(ValueError, match="no limit for .*full-batch step"):
        gate.check(missing, report=lambda *args: None)
    stale = {**limits, "a ratio no longer measured": 1.0}
    with pytest.raises(ValueError, match="no measurement for .*no longer"):
        gate.check(stale, report=lambda *args: None)


def test_targets_script_measures_every_target(tmp_path):
    # The full run of benchmarks/targets.py takes minutes and is not a test;
    # this runs every one of its measurements once on a tiny problem, so a
    # change to a kernel's signature cannot leave the script broken unseen.
    table = tmp_path / "targets.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "targets.py"), "--n", "3000",
         "--rounds", "1", "--cool-down", "0", "--markdown", str(table)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1].strip() for line in table.read_text().splitlines()[2:]]
    assert set(rows) == {str(target) for target in range(1, 9)}


def test_float32_calls_script_runs(tmp_path):
    # benchmarks/float32_calls.py backs the README's text on target 2; a
    # tiny run checks that it still runs against the current kernels
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "float32_calls.py"),
         "--n", "3000", "--calls", "3"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "float64 step / float32 step, median per call" in done.stdout


def test_asv_can_import_every_benchmark_module(tmp_path):
    # asv imports each module of the benchmarks package by its package name
    # (benchmarks.targets, ...), not as the scripts they also are; a script
    # importing a sibling by its bare name must still import that way
    code = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        sys.path.insert(0, {str(ROOT)!r})
        import benchmarks
        for module in pkgutil.iter_modules(benchmarks.__path__):
            importlib.import_module("benchmarks." + module.name)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
