"""Tests of ``fastgd bench`` (``fastgd/_bench.py``) and its command line.

One small bench run (20,000 x 8, three batch sizes) is shared by most tests;
it takes a few seconds. The full-size run is not tested here.
"""

import csv
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from fastgd import _bench  # noqa: E402
from fastgd._cli import main  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A small bench run written into a temporary folder."""
    out = tmp_path_factory.mktemp("bench")
    return _bench.run_bench(
        20_000,
        8,
        batch_sizes=[None, 1, 32],
        out=out,
        seed=3,
        time_limit=20.0,
        repeats=2,
        n_jobs=1,
        progress=False,
    )


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_make_problem_optimum_matches_lstsq():
    problem = _bench.make_problem(2_000, 6, seed=11, condition=50.0)
    design = np.column_stack([problem.X, np.ones(problem.n_samples)])
    exact = np.linalg.lstsq(design, problem.y, rcond=None)[0]

    np.testing.assert_allclose(problem.coef_opt, exact[:-1], rtol=1e-8)
    np.testing.assert_allclose(problem.intercept_opt, exact[-1], rtol=1e-8)
    residual = design @ exact - problem.y
    np.testing.assert_allclose(problem.loss_opt, residual @ residual / 2_000, rtol=1e-8)
    gram = design.T @ design / problem.n_samples
    np.testing.assert_allclose(problem.second_moments, gram, rtol=1e-10)
    np.testing.assert_allclose(
        problem.hessian_eigs, np.linalg.eigvalsh(2 * gram), rtol=1e-8
    )


def test_make_problem_float32_optimum_is_that_of_the_stored_data():
    problem = _bench.make_problem(2_000, 4, dtype="float32", seed=5)
    design = np.column_stack([problem.X.astype(np.float64), np.ones(2_000)])
    exact = np.linalg.lstsq(design, problem.y.astype(np.float64), rcond=None)[0]

    assert problem.X.dtype == problem.y.dtype == np.float32
    assert problem.X.flags.c_contiguous
    np.testing.assert_allclose(problem.coef_opt, exact[:-1], rtol=1e-8)


def test_make_problem_has_unit_noise_and_the_asked_condition():
    problem = _bench.make_problem(50_000, 8, seed=1, condition=100.0)
    eigs = problem.hessian_eigs

    # noise variance 1: the optimal loss is 1 within sampling error
    assert abs(problem.loss_opt - 1.0) < 0.03
    # the intercept column couples weakly to zero-mean features
    assert 80 < eigs[-1] / eigs[0] < 125


def test_step_size_rule():
    problem = _bench.make_problem(2_000, 6, seed=11)
    eigs = problem.hessian_eigs
    trace_sigma = eigs.sum() / 2

    assert _bench.step_size(problem, None) == pytest.approx(2 / (eigs[0] + eigs[-1]))
    assert _bench.step_size(problem, 2_000) == _bench.step_size(problem, None)
    assert _bench.step_size(problem, 1) == pytest.approx(
        _bench.SGD_MISADJUSTMENT / trace_sigma
    )
    # large batches are capped at 1/L
    assert _bench.step_size(problem, 1_024) == pytest.approx(1 / eigs[-1])


def test_parse_batch_sizes_orders_full_first_and_drops_repeats():
    assert _bench.parse_batch_sizes("8, full,1,8") == [None, 1, 8]
    with pytest.raises(ValueError, match="positive integers or 'full', got 'x'"):
        _bench.parse_batch_sizes("1,x")
    with pytest.raises(ValueError, match="at least 1, got 0"):
        _bench.parse_batch_sizes("0")


def test_run_bench_writes_the_three_files(bench):
    names = sorted(path.name for path in bench.files)

    assert names == [
        "time_to_accuracy.csv",
        "time_to_accuracy.md",
        "time_to_accuracy.png",
    ]
    assert all(path.exists() and path.stat().st_size > 0 for path in bench.files)


def test_run_bench_csv_has_one_reached_row_per_method(bench):
    rows = read_csv(bench.files[0].with_suffix(".csv"))

    assert list(rows[0]) == _bench.CSV_COLUMNS
    assert [(row["method"], row["batch_size"]) for row in rows] == [
        ("full-batch GD", "full"),
        ("SGD", "1"),
        ("mini-batch SGD", "32"),
    ]
    for row in rows:
        assert row["status"] == "reached", row
        assert float(row["loss_ratio"]) <= _bench.TARGET_RATIO
        assert float(row["seconds_min"]) <= float(row["seconds"])
        assert float(row["seconds"]) <= float(row["seconds_max"])
        assert int(row["repeats"]) == 2
        assert int(row["update_steps"]) > 0
    assert float(rows[0]["speedup_vs_full_batch"]) == 1.0
    assert float(rows[0]["epochs"]) == int(rows[0]["update_steps"])


def test_run_bench_markdown_table_matches_csv(bench):
    text = bench.files[0].with_suffix(".md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]

    assert table[0].startswith("| method | batch size | eta | epochs | update steps")
    assert len(table) == 1 + 3
    assert table[1].startswith("| full-batch GD | full |")
    assert "not reached" not in text
    assert text == bench.markdown


def test_run_bench_png_is_a_valid_image(bench):
    from matplotlib.image import imread

    path = bench.files[0].with_suffix(".png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width, _ = imread(path).shape
    assert width > 1.5 * height > 600


def test_replay_retraces_the_timed_epochs(bench):
    # the untimed replay on gathered slices makes the same updates as the
    # timed epoch, so its end state is the timed run's to rounding
    for trace in bench.traces:
        assert trace.replay_mismatch <= 1e-12, trace.label


def test_trace_checkpoints_are_ordered_and_reach_the_target(bench):
    target = _bench.TARGET_RATIO * bench.problem.loss_opt
    for trace in bench.traces:
        seconds = trace.seconds
        assert np.all(np.diff(seconds) >= 0), trace.label
        assert np.all(np.diff(trace.steps) >= 0), trace.label
        assert trace.loss[trace.hit] <= target
        earlier = np.asarray(trace.loss[: trace.hit])
        assert not np.any(earlier <= target), trace.label
        assert len(trace.theta) == len(trace.steps)


def test_sgd_reaching_the_target_in_a_later_epoch_is_placed_in_that_epoch():
    # 5,000 rows: SGD needs several epochs, so the replayed epoch that meets
    # the target is not the first one
    problem = _bench.make_problem(5_000, 8, seed=2)
    trace = _bench.run_method(problem, 1, time_limit=20.0, seed=0, repeats=3)
    seconds = trace.seconds
    median = trace.unit_seconds[trace.median_repeat]
    epoch = trace.units[trace.hit]  # whole epochs before the one meeting it

    assert trace.status == "reached"
    assert epoch >= 1 and 0 < trace.fraction[trace.hit] <= 1
    assert np.all(np.diff(seconds) >= 0)
    # the timed repeats stop at the row that met the target: the last unit
    # ends there, and the rest of that epoch lies beyond it
    assert median[:epoch].sum() < seconds[trace.hit]
    assert seconds[trace.hit] == pytest.approx(median.sum())
    assert seconds[-1] >= seconds[trace.hit]
    assert trace.rows[-1] == problem.n_samples * trace.unit_seconds.shape[1]
    assert trace.seconds_to_target()[0] == pytest.approx(seconds[trace.hit])
    assert trace.replay_mismatch <= 1e-12


def test_time_to_target_runs_the_kernel_up_to_the_hit_only(monkeypatch):
    # the last timed epoch visits exactly the rows the replay needed
    problem = _bench.make_problem(5_000, 8, seed=2)
    visited = []
    epoch = _bench._engine.stochastic_epoch

    def counting(X, y, coef, intercept, order, *args, **kwargs):
        visited.append(len(order))
        return epoch(X, y, coef, intercept, order, *args, **kwargs)

    trace = _bench.run_method(problem, 1, time_limit=20.0, seed=0, repeats=1)
    monkeypatch.setattr(_bench._engine, "stochastic_epoch", counting)
    again = _bench.run_method(problem, 1, time_limit=20.0, seed=0, repeats=1)

    hit_rows = trace.rows[trace.hit] - trace.units[trace.hit] * problem.n_samples
    assert 0 < hit_rows < problem.n_samples
    assert again.stop_fraction == trace.fraction[trace.hit]
    assert visited[-1] == hit_rows
    assert again.unit_seconds.shape[1] == trace.units[trace.hit] + 1


def test_full_batch_trace_records_every_step(bench):
    full = bench.traces[0]

    assert full.batch_size is None
    assert full.steps == list(range(len(full.steps)))
    # the last step's loss came from the step after it, which is not timed
    assert full.unit_seconds.shape == (2, full.steps[-1], 2)


def test_cli_bench_prints_the_table_and_the_files(capsys, tmp_path):
    status = main(
        [
            "bench",
            "--n",
            "4000",
            "--d",
            "4",
            "--batch-sizes",
            "full,1",
            "--out",
            str(tmp_path),
            "--repeats",
            "1",
            "--threads",
            "1",
        ]
    )
    out = capsys.readouterr().out

    assert status == 0
    assert "| full-batch GD | full |" in out
    assert "| SGD | 1 |" in out
    for name in ("md", "csv", "png"):
        path = tmp_path / f"time_to_accuracy.{name}"
        assert f"wrote {path}" in out
        assert path.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n", "1000", "--batch-sizes", "1,1000"], "1000 is not below --n 1000"),
        (["--batch-sizes", "1,many"], "got 'many'"),
        (["--dtype", "float16"], "invalid choice"),
        (["--condition", "0.5"], "must be a finite number of at least 1"),
        (["--condition", "0"], "must be a finite number of at least 1"),
        (["--n", "9", "--d", "8"], "--n 9 must exceed --d 8 + 1"),
        (["--n", "2", "--d", "8"], "--n 2 must exceed --d 8 + 1"),
    ],
)
def test_cli_bench_rejects_bad_options(capsys, tmp_path, argv, message):
    status = main(["bench", "--out", str(tmp_path), *argv])

    assert status == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "time_to_accuracy.csv").exists()


def test_cli_bench_without_matplotlib_says_how_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)

    assert main(["bench", "--n", "1000"]) == 2
    assert 'pip install "fastgd[cli]"' in capsys.readouterr().err


def test_unreachable_target_gives_up_on_the_wall_clock():
    # 40 rows, 32 features: SGD with the bench's step never gets within 1%
    # of the (near zero) optimum, and each timed epoch takes microseconds;
    # the untimed bookkeeping must not keep the method running for minutes
    problem = _bench.make_problem(40, 32, seed=0)
    trace = _bench.run_method(problem, 1, time_limit=0.2, seed=0, repeats=1)
    assert trace.status == "time limit"
    assert trace.hit is None


def test_run_bench_needs_more_rows_than_unknowns(tmp_path):
    # with n <= d + 1 the optimum loss is 0: no "within 1%" to reach, and the
    # run used to spin until its time limits
    with pytest.raises(ValueError, match="n_samples=9 must exceed n_features"):
        _bench.run_bench(9, 8, out=tmp_path, progress=False)
    assert not list(tmp_path.iterdir())
