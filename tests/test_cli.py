"""Tests of the ``fastgd`` command line and its CSV preprocessing.

Most tests call ``main([...])`` in-process and read the output with capsys;
one runs ``python -m fastgd`` in a subprocess to check the real entry point.
The demo runs on a reduced generated problem to stay fast.
"""

import inspect
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from fastgd import _cli, _tabular  # noqa: E402
from fastgd._cli import main  # noqa: E402

REPO = Path(__file__).parents[1]
SHARED_DATA = REPO / ".." / "shared" / "data"
HOUSING_TARGET = "median_house_value"
NUMBER = r"[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?"


@pytest.fixture(scope="module")
def housing_path():
    """The shared housing.csv, or the copy bundled with the package."""
    path = SHARED_DATA / "housing.csv"
    return path if path.exists() else REPO / "fastgd" / "data" / "housing.csv"


@pytest.fixture(scope="module")
def diamonds_path():
    path = SHARED_DATA / "diamonds.csv"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def run_cli(capsys, *argv):
    """Run ``main`` on string arguments; return (status, stdout, stderr)."""
    status = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def coefficient_table(out):
    """Parse the coefficient table: {name: (fastgd, lstsq, |difference|)}."""
    row = re.compile(rf"^(\S.*?)\s+({NUMBER})\s+({NUMBER})\s+({NUMBER})$")
    lines = out.splitlines()
    header = re.compile(r"^feature\s+fastgd\s+lstsq\s+\|difference\|$")
    start = next(i for i, line in enumerate(lines) if header.match(line))
    table = {}
    for line in lines[start + 2 :]:
        match = row.match(line)
        if match is None:
            break
        table[match[1]] = tuple(float(match[i]) for i in (2, 3, 4))
    return table


def r_squared(out):
    """Return (fastgd, lstsq) R^2 from the fit report."""
    match = re.search(rf"^R\^2\s+({NUMBER})\s+({NUMBER})$", out, re.MULTILINE)
    return float(match[1]), float(match[2])


def test_fit_housing_reports_preprocessing_and_coefficients(capsys, housing_path):
    status, out, err = run_cli(capsys, "fit", housing_path, "--target", HOUSING_TARGET)

    assert status == 0, err
    assert "text column 'ocean_proximity': one-hot encoded" in out
    assert "reference level '<1H OCEAN'" in out
    assert "'ISLAND' (5 rows)" in out
    assert "dropped 207 rows" in out and "total_bedrooms: 207" in out
    assert "standardised 8 numeric columns" in out
    assert "results below are in the target's units" in out
    table = coefficient_table(out)
    assert set(table) == {
        "longitude",
        "latitude",
        "housing_median_age",
        "total_rooms",
        "total_bedrooms",
        "population",
        "households",
        "median_income",
        "ocean_proximity=INLAND",
        "ocean_proximity=NEAR BAY",
        "ocean_proximity=NEAR OCEAN",
        "(intercept)",
    }
    assert re.search(r"^epochs: \d+ +update steps: \d+ +wall time: ", out, re.M)
    assert "nan" not in out.lower()


def test_fit_housing_default_sgd_is_near_least_squares(capsys, housing_path):
    status, out, _ = run_cli(capsys, "fit", housing_path, "--target", HOUSING_TARGET)

    assert status == 0
    # The target is scaled to variance 1 for the fit, so the R^2 gap equals
    # the gap in the fitted loss. Mini-batch SGD with a constant step stops
    # (tol=1e-3 over 5 epochs) in a noise ball, about 1e-3 above the optimum
    # here; 0.01 leaves room for seeds and thread counts but would catch a
    # wrong scaling, a wrong sign or a coefficient in the wrong row.
    fit_r2, exact_r2 = r_squared(out)
    assert 0 <= exact_r2 - fit_r2 < 0.01, (fit_r2, exact_r2)


def test_fit_housing_full_batch_matches_lstsq(capsys, housing_path):
    # 1/L is 0.128 for this design and its condition number kappa about 270.
    # With a step of at most 1/L every step shrinks the distance to the
    # optimum by (1 - 1/kappa) or more, so 3000 steps leave at most
    # exp(-3000/270) ~ 1.5e-5 of the optimum's norm; a relative tolerance of
    # 1e-3 on the largest coefficient is therefore safe and still sees a
    # mis-scaled coefficient or intercept.
    status, out, err = run_cli(
        capsys,
        "fit",
        housing_path,
        "--target",
        HOUSING_TARGET,
        "--batch-size",
        "full",
        "--eta0",
        "0.125",
        "--tol",
        "none",
        "--max-iter",
        "3000",
        # one thread: 3000 tiny parallel regions crawl when other processes
        # load the machine, and results do not depend on the thread count
        "--threads",
        "1",
    )

    assert status == 0, err
    table = coefficient_table(out)
    fit = np.array([row[0] for row in table.values()])
    exact = np.array([row[1] for row in table.values()])
    np.testing.assert_allclose(fit, exact, rtol=0, atol=1e-3 * np.abs(exact).max())
    fit_r2, exact_r2 = r_squared(out)
    assert fit_r2 == pytest.approx(exact_r2, abs=1e-6)


def test_fit_no_standardize_diverges_with_advice(capsys, housing_path):
    status, out, err = run_cli(
        capsys, "fit", housing_path, "--target", HOUSING_TARGET, "--no-standardize"
    )

    assert status == 1
    assert re.search(r"the fit diverged in epoch \d+", err)
    assert "No coefficients are reported" in err
    assert "drop --no-standardize" in err
    assert re.search(r"lower --eta0 from 0.01 to [0-9.e-]+ or less", err)
    assert "lstsq" not in out
    assert "nan" not in (out + err).lower()
    assert "Traceback" not in err


def test_fit_missing_file_is_one_line_error(capsys, tmp_path):
    status, out, err = run_cli(
        capsys, "fit", tmp_path / "absent.csv", "--target", "price"
    )

    assert status == 2
    assert out == ""
    assert err.startswith("fastgd: error: no such file")
    assert err.count("\n") == 1


def test_fit_missing_target_lists_columns(capsys, housing_path):
    status, out, err = run_cli(capsys, "fit", housing_path, "--target", "price")

    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("fastgd: error: no column 'price'")
    assert "available columns: longitude, latitude" in err
    assert "ocean_proximity" in err


def test_fit_text_target_is_refused(capsys, housing_path):
    status, _, err = run_cli(capsys, "fit", housing_path, "--target", "ocean_proximity")

    assert status == 2
    assert err.count("\n") == 1
    assert "'ocean_proximity' is not numeric" in err


def test_fit_tol_none_runs_max_iter_epochs(capsys, housing_path):
    status, out, _ = run_cli(
        capsys,
        "fit",
        housing_path,
        "--target",
        HOUSING_TARGET,
        "--tol",
        "none",
        "--max-iter",
        "7",
    )

    assert status == 0
    assert "tol none (fixed epochs)" in out
    assert re.search(r"^epochs: 7 ", out, re.M)
    assert "note: stopped at --max-iter" not in out


def test_fit_max_iter_reached_is_reported(capsys, housing_path):
    status, out, err = run_cli(
        capsys, "fit", housing_path, "--target", HOUSING_TARGET, "--max-iter", "2"
    )

    assert status == 0
    assert "note: stopped at --max-iter 2" in out
    assert "Warning" not in err


def test_fit_impute_mean_keeps_rows(capsys, housing_path):
    status, out, _ = run_cli(
        capsys, "fit", housing_path, "--target", HOUSING_TARGET, "--impute", "mean"
    )

    assert status == 0
    assert "filled 207 empty cells with the column mean" in out
    assert "on 20640 rows x 11 features" in out


def test_fit_l2_norm_loss(capsys, housing_path):
    status, out, _ = run_cli(
        capsys, "fit", housing_path, "--target", HOUSING_TARGET, "--loss", "l2_norm"
    )

    assert status == 0
    assert "training loss (root mean square residual)" in out
    fit_r2, exact_r2 = r_squared(out)
    assert exact_r2 - fit_r2 < 0.01


def test_fit_diamonds_price(capsys, diamonds_path):
    status, out, err = run_cli(capsys, "fit", diamonds_path, "--target", "price")

    assert status == 0, err
    for column in ("cut", "color", "clarity"):
        assert f"text column {column!r}: one-hot encoded" in out
    table = coefficient_table(out)
    assert {"carat", "cut=Fair", "color=J", "clarity=I1"} <= set(table)
    # reference levels are the most frequent ones and have no column
    assert not {"cut=Ideal", "color=G", "clarity=SI1"} & set(table)
    fit_r2, exact_r2 = r_squared(out)
    assert exact_r2 > 0.9
    # same noise-ball argument as for housing
    assert exact_r2 - fit_r2 < 0.01
    assert "nan" not in out.lower()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--batch-size", "0"), ("--batch-size", "half"), ("--eta0", "-1"), ("--tol", "x")],
)
def test_fit_rejects_bad_option_values(capsys, housing_path, option, value):
    status, out, err = run_cli(
        capsys, "fit", housing_path, "--target", HOUSING_TARGET, option, value
    )

    assert status == 2
    assert f"argument {option}" in err


def test_fit_batch_larger_than_data_is_refused(capsys, tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("a,b\n1,2\n2,4\n3,7\n")

    status, _, err = run_cli(capsys, "fit", path, "--target", "b", "--batch-size", "8")

    assert status == 2
    assert "--batch-size 8 exceeds the 3 rows" in err


def test_main_without_pandas_names_the_extra(capsys, monkeypatch, housing_path):
    monkeypatch.setitem(sys.modules, "pandas", None)

    status, out, err = run_cli(capsys, "fit", housing_path, "--target", "x")

    assert status == 2
    assert err.count("\n") == 1
    assert 'pip install "fastgd[cli]"' in err


def test_main_demo_uses_the_full_size_problem(monkeypatch):
    default = inspect.signature(_cli.run_demo).parameters["n_samples"].default
    assert default == 1_000_000
    calls = []
    monkeypatch.setattr(_cli, "run_demo", lambda **kwargs: calls.append(kwargs) or 0)

    assert main(["demo", "--threads", "1"]) == 0
    assert calls == [{"n_jobs": 1}]


def test_run_demo_small_prints_one_table(capsys):
    # one thread for the same reason as in the full-batch fit test
    assert _cli.run_demo(n_samples=20_000, n_jobs=1) == 0
    out = capsys.readouterr().out

    assert "warm-up: compiled the Numba kernels" in out
    assert "generated: 20000 x 32 float64" in out
    rows = [
        line for line in out.splitlines() if line.startswith(("housing ", "generated "))
    ]
    assert len(rows) == 8, out
    # rows read: data set, method..., rel. distance, time; key on the
    # method's first word
    rel = {(line.split()[0], line.split()[1]): float(line.split()[-2]) for line in rows}
    # full batch at 1/L converges linearly: tiny distances on both problems
    assert rel["housing", "full-batch"] < 1e-5
    assert rel["generated", "full-batch"] < 1e-8
    # the housing part runs at full size; constant-step SGD ends in a noise
    # ball of about 1e-3 of the optimum's norm (see _DEMO_RUNS)
    assert rel["housing", "SGD,"] < 1e-2
    assert rel["housing", "mini-batch"] < 1e-2
    assert "nan" not in out.lower()


def test_demo_optimum_matches_lstsq():
    X, y = _cli._make_regression(2_000, 5, seed=1)
    gram = _cli._augmented_gram(X)
    optimum = np.linalg.solve(gram, np.append(X.T @ y, y.sum()) / len(y))

    exact = np.linalg.lstsq(np.column_stack([X, np.ones(len(y))]), y, rcond=None)[0]

    np.testing.assert_allclose(optimum, exact, rtol=1e-10)


def test_cli_entry_point_in_subprocess(housing_path):
    fit = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastgd",
            "fit",
            str(housing_path),
            "--target",
            HOUSING_TARGET,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    missing = subprocess.run(
        [sys.executable, "-m", "fastgd", "fit", "absent.csv", "--target", "y"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )

    assert fit.returncode == 0, fit.stderr
    assert "ocean_proximity=INLAND" in fit.stdout
    assert fit.stderr == ""
    assert missing.returncode == 2
    assert missing.stderr == "fastgd: error: no such file: 'absent.csv'\n"


def test_build_design_handles_levels_constants_and_gaps():
    frame = pd.DataFrame(
        {
            "y": [1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0, 8.0],
            "x": [1.0, 2.0, 3.0, None, 5.0, 6.0, 7.0, 9.0],
            "flat": [3.0] * 8,
            "colour": ["red", "blue", "red", "red", "blue", "red", "red", "green"],
            "id": [f"row{i}" for i in range(8)],
        }
    )

    design = _tabular.build_design(
        frame, "y", impute="median", max_levels=5, min_level_count=2
    )
    notes = "\n".join(design.notes)

    assert "dropped 1 row with no 'y' value" in notes
    assert "'id': dropped, it has 7 distinct values" in notes
    assert "'flat': dropped, every row holds 3" in notes
    assert "reference level 'red' (the most frequent, 4 rows)" in notes
    assert "'green' (1 row)" in notes
    assert "filled 1 empty cell with the column median" in notes
    assert design.feature_names == ["x", "colour=blue"]
    assert design.X.flags.c_contiguous and design.X.dtype == np.float64
    np.testing.assert_allclose(design.X[:, 0].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(design.X[:, 0].std(), 1)
    np.testing.assert_array_equal(design.X[:, 1], [0, 1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(design.y, [1, 2, 4, 5, 6, 7, 8])


def test_build_design_first_reference_and_no_standardize():
    frame = pd.DataFrame(
        {"y": [1.0, 2, 3, 4], "x": [10.0, 20, 30, 50], "c": list("abbb")}
    )

    design = _tabular.build_design(
        frame, "y", standardize=False, min_level_count=0, reference="first"
    )

    assert design.feature_names == ["x", "c=b"]
    np.testing.assert_array_equal(design.X, [[10, 0], [20, 1], [30, 1], [50, 1]])
    assert any("not standardised" in note for note in design.notes)


def test_format_table_aligns_columns():
    lines = _cli._format_table(
        ["name", "value"], [["a", "1.5"], ["long name", "-10.25"]]
    )

    assert lines == [
        "name        value",
        "---------  ------",
        "a             1.5",
        "long name  -10.25",
    ]


def test_fit_infinite_value_is_one_line_error(capsys, tmp_path):
    path = tmp_path / "inf.csv"
    path.write_text("a,b\n1,2\n2,inf\n3,5\n")

    status, _, err = run_cli(capsys, "fit", path, "--target", "a")

    assert status == 2
    assert err == (
        "fastgd: error: column 'b' holds 1 infinite value (first in data row 2); "
        "fix or remove them\n"
    )


# -- regressions from trying to break the command line -----------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,c\n", "has a header row but no data rows"),
        ("a,b,c\n1,2,3\n",
         "no usable feature columns remain after preprocessing (column 'a': "
         "dropped, every row holds 1; column 'b': dropped, every row holds 2)"),
        ("a,b,c\n1,x,3\n1,x,4\n",
         "(text column 'b': dropped, its only value is 'x'; column 'a': "
         "dropped, every row holds 1)"),
    ],
)
def test_fit_table_with_nothing_to_fit_says_why(capsys, tmp_path, text, message):
    path = tmp_path / "table.csv"
    path.write_text(text)

    status, out, err = run_cli(capsys, "fit", path, "--target", "c")

    assert status == 2
    assert message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        # it used to diverge and advise a smaller --eta0, again and again
        ("e160", "target 'y' holds values as large as 1e+160, whose squares "
                 "overflow"),
        # it used to fit y as 0 and exit 0 with both losses printed as 0
        ("e-200", "target 'y' holds values no larger than 1e-200, whose "
                  "squared differences underflow"),
    ],
)
def test_fit_target_whose_squares_leave_float64_is_refused(capsys, tmp_path,
                                                           scale, message):
    path = tmp_path / "extreme.csv"
    path.write_text("x,y\n" + "".join(f"{i},{(-1) ** i}{scale}\n" for i in range(30)))

    status, out, err = run_cli(capsys, "fit", path, "--target", "y",
                               "--batch-size", "full")

    assert status == 2
    assert message in err
    assert "rescale it" in err


def test_fit_divergence_advice_fits_the_design(capsys, tmp_path):
    # evenly scaled features under --no-standardize were still told to drop
    # it, and the advised eta0 (rounded down by a power of ten: 0.05) sat
    # far below the 1/L it named (0.4)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(200), rng.standard_normal(200)
    path = tmp_path / "even.csv"
    path.write_text("a,b,t\n" + "".join(
        f"{p},{q},{2 * p - q + 1}\n" for p, q in zip(a, b)))

    status, _, err = run_cli(capsys, "fit", path, "--target", "t",
                             "--no-standardize", "--batch-size", "full",
                             "--eta0", "5")

    assert status == 1
    assert "drop --no-standardize" not in err
    advised, safe = re.search(
        r"lower --eta0 from 5 to ([0-9.]+) or less \(the safe full-batch step "
        r"for this design is 1/L = ([0-9.]+)", err).groups()
    assert float(advised) <= float(safe) < 2 * float(advised)


def test_fit_l2_norm_divergence_advises_the_squared_loss(capsys, tmp_path):
    # a line fits these rows exactly: a smaller --eta0 only diverges later,
    # so the advice is the squared loss, not a smaller step
    path = tmp_path / "exact.csv"
    path.write_text("a,y\n" + "".join(f"{i},{i}\n" for i in range(1, 9)))

    status, out, err = run_cli(capsys, "fit", path, "--target", "y",
                               "--batch-size", "1", "--loss", "l2_norm")

    assert status == 1
    assert "use --loss squared_error" in err
    assert "lower --eta0" not in err


def test_fit_constant_target_reports_r2_as_undefined(capsys, tmp_path):
    csv = tmp_path / "constant.csv"
    csv.write_text("x,y\n" + "".join(f"{i},7\n" for i in range(40)))
    status, out, err = run_cli(capsys, "fit", csv, "--target", "y")
    assert status == 0, err
    assert "n/a (constant y)" in out
    # lstsq's slopes here are rounding noise: no "100.0% of" them
    assert "of the largest |lstsq coefficient|" not in out


def test_fit_overflowing_column_is_named(capsys, tmp_path):
    csv = tmp_path / "huge.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i}e300,{i},{i}\n" for i in range(1, 30)))
    status, _, err = run_cli(capsys, "fit", csv, "--target", "y")
    assert status == 2
    assert "column 'a' holds values as large as" in err
    assert len(err.strip().splitlines()) == 1


def test_negative_seed_is_an_argument_error(capsys, housing_path):
    status, _, err = run_cli(capsys, "fit", housing_path, "--target",
                             HOUSING_TARGET, "--seed", "-1")
    assert status == 2 and "--seed" in err


def test_bench_refuses_a_file_as_output_folder(capsys, tmp_path):
    target = tmp_path / "afile"
    target.write_text("")
    status, _, err = run_cli(capsys, "bench", "--n", "2000", "--out", target)
    assert status == 2 and "is not a folder" in err


def test_bench_default_sizes_skip_those_a_small_n_cannot_hold(capsys, tmp_path):
    status, out, err = run_cli(capsys, "bench", "--n", "1000", "--d", "4",
                               "--repeats", "1", "--out", tmp_path)
    assert status == 0, err
    assert "skipping batch size 4096" in out


def test_console_script_works_from_another_folder(tmp_path):
    # regression: a stale site-packages/fastgd folder (Numba's cache left by
    # a non-editable install) once shadowed the editable install
    import shutil

    script = shutil.which("fastgd")
    if script is None:
        pytest.skip("the fastgd console script is not installed")
    done = subprocess.run([script, "--version"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("fastgd ")


def test_threads_minus_one_means_all_as_n_jobs_does(capsys, tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("a,y\n" + "".join(f"{i},{2 * i + 1}\n" for i in range(40)))

    status, _, err = run_cli(capsys, "fit", path, "--target", "y",
                             "--threads", "-1", "--batch-size", "full")
    assert status == 0, err

    status, _, err = run_cli(capsys, "fit", path, "--target", "y",
                             "--threads", "-2")
    assert status == 2
    assert "must be at least 1, got -2, or -1 for all threads" in err
