"""The statistics of robust_ray.analysis against independent computations: formulas worked
by hand or with numpy, scipy distributions, and the seed papers' own worked examples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from analysis_data import l25, scipy_exact_p
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from robust_ray.analysis.corruption import corruption_errors, mce, overlap_score, per_corruption
from robust_ray.analysis.mcv import mean_cv, quadrant
from robust_ray.analysis.orthogonal import anova, range_analysis
from robust_ray.analysis.pixel import pixel_index
from robust_ray.analysis.stats import band, correlation, describe, multiple_correlation, peak_level, segment_of


@pytest.mark.parametrize(
    "r, expected",
    [
        (0.951, "significant"),
        (-0.99, "significant"),
        (0.95, "high"),
        (0.8, "high"),
        (-0.8, "high"),
        (0.7999, "moderate"),
        (0.5, "moderate"),
        (0.4999, "low"),
        (0.3, "low"),
        (0.2999, "weak or none"),
        (0.0, "weak or none"),
        (math.nan, "undefined"),
    ],
)
def test_band_follows_000_section_2_4(r, expected):
    assert band(r) == expected


def _spearman_by_hand(x, y):
    """No ties: r = 1 - 6 sum d² / (n (n² - 1)); p from t = r sqrt((n-2)/(1-r²)), n-2 df."""
    n = len(x)
    d = np.argsort(np.argsort(x)) - np.argsort(np.argsort(y))
    r = 1 - 6 * np.sum(d**2) / (n * (n**2 - 1))
    if abs(r) == 1:
        return r, 0.0
    t = r * math.sqrt((n - 2) / (1 - r**2))
    return r, 2 * sst.t.sf(abs(t), n - 2)


@settings(max_examples=40, deadline=None)
@given(st.integers(11, 40), st.integers(0, 2**31 - 1))
def test_spearman_matches_the_rank_formula_and_the_t_approximation_above_10(n, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.permutation(n) + 0.5, rng.normal(size=n)
    c = correlation(x, y)
    r, p = _spearman_by_hand(x, y)
    assert c.n == n and c.note == ""
    assert c.r == pytest.approx(r, abs=1e-12)
    if abs(r) < 1:
        assert c.p == pytest.approx(p, rel=1e-9, abs=1e-300)


def test_pearson_matches_numpy_and_the_t_test():
    rng = np.random.default_rng(1)
    x = np.arange(12.0)
    y = 0.3 * x + rng.normal(size=12)
    c = correlation(x, y, "pearson")
    r = np.corrcoef(x, y)[0, 1]
    t = r * math.sqrt(10 / (1 - r**2))
    assert c.r == pytest.approx(r, abs=1e-12)
    assert c.p == pytest.approx(2 * sst.t.sf(abs(t), 10), rel=1e-9) and c.p_method == "t approximation"


@pytest.mark.parametrize("n", range(3, 9))
@pytest.mark.parametrize("ties", [False, True])
def test_small_n_p_is_exact_as_scipy_permutation_test(n, ties):
    rng = np.random.default_rng(n + 10 * ties)
    for _ in range(3):
        x = rng.integers(0, 3, n).astype(float) if ties else rng.permutation(n).astype(float)
        y = rng.integers(0, 3, n).astype(float) if ties else rng.normal(size=n)
        if np.all(x == x[0]) or np.all(y == y[0]):
            continue
        for method in ("spearman", "pearson"):
            c = correlation(x, y, method)
            assert c.p_method.startswith("exact permutation")
            if ties:  # integer (or half-integer rank) data: the exact p in integers, no float noise
                assert c.p == pytest.approx(integer_exact_p(x, y, method), abs=1e-12)
            if abs(c.r) > 1e-9:  # at r = 0 scipy's count of null values equal to the observed one is float noise
                assert c.p == pytest.approx(scipy_exact_p(x, y, method), abs=1e-12)


def integer_exact_p(x, y, method) -> float:
    """2 min(P(T >= t), P(T <= t)) over all n! pairings of T = sum x_i y_pi(i), counted in
    integers (ranks doubled: average ranks are half-integers)."""
    import itertools

    if method == "spearman":
        x, y = 2 * sst.rankdata(x), 2 * sst.rankdata(y)
    xi, yi = np.asarray(x).astype(np.int64), np.asarray(y).astype(np.int64)
    t = int(xi @ yi)
    null = np.array([int(xi @ yi[list(p)]) for p in itertools.permutations(range(len(xi)))])
    return min(1.0, 2 * min((null >= t).mean(), (null <= t).mean()))


def test_a_perfect_rank_correlation_at_n_4_has_p_one_twelfth_not_zero():
    # issue 15: the t approximation gave p = 0; the exact two-sided p is 2/4! (n = 3: 2/3! = 1/3)
    assert correlation([0, 1, 2, 3], [0.1, 0.2, 0.4, 0.8]).p == pytest.approx(1 / 12)
    assert correlation([0, 1, 2], [0.3, 0.2, 0.1]).p == pytest.approx(1 / 3)


def _frame(rng, slope, seeds, levels=np.arange(6.0)):
    x = np.repeat(levels, seeds)
    return x, 0.9 - slope * x + rng.normal(0, 0.02, len(x))


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_bootstrap_over_seeds_covers_the_true_r_in_at_least_93_percent_of_200_frames(method):
    rng = np.random.default_rng(7)
    fn = sst.spearmanr if method == "spearman" else sst.pearsonr
    xb, yb = _frame(rng, 0.005, 20_000)  # the design's population: 20,000 seeds per level
    true = fn(xb, yb).statistic
    hits = 0
    for _ in range(200):
        x, y = _frame(rng, 0.005, 3)  # 6 levels x 3 seeds
        c = correlation(x, y, method)
        assert c.ci_method.startswith("bootstrap over seeds")
        hits += c.ci_low <= true <= c.ci_high
    assert hits / 200 >= 0.93


def test_one_seed_gets_a_fisher_z_interval_as_scipy_pearsonr():
    rng = np.random.default_rng(3)
    x = np.arange(8.0)
    y = 0.1 * x + rng.normal(size=8)
    c = correlation(x, y, "pearson")
    want = sst.pearsonr(x, y).confidence_interval(0.95)
    assert (c.ci_low, c.ci_high) == pytest.approx((want.low, want.high), rel=1e-9) and c.ci_method == "Fisher z"
    s = correlation(x, y)
    z, se = np.arctanh(s.r), math.sqrt((1 + s.r**2 / 2) / 5)  # Bonett & Wright
    assert (s.ci_low, s.ci_high) == pytest.approx(
        (math.tanh(z - 1.959964 * se), math.tanh(z + 1.959964 * se)), rel=1e-5
    )


def test_wilson_interval_is_statsmodels_on_the_test_images():
    from statsmodels.stats.proportion import proportion_confint

    from robust_ray.analysis.stats import wilson

    lo, hi = wilson([0.95, 0.5], [1000, 10])
    want = proportion_confint([950, 5], [1000, 10], alpha=0.05, method="wilson")
    assert np.allclose(lo, want[0]) and np.allclose(hi, want[1])
    assert all(math.isnan(v) for v in wilson([0.9], [np.nan])[0])


def test_mean_interval_is_the_t_interval():
    from robust_ray.analysis.stats import mean_interval

    y = np.array([0.91, 0.93, 0.92])
    mean, sd, lo, hi, n = mean_interval(y)
    want = sst.t.interval(0.95, 2, loc=y.mean(), scale=sst.sem(y))
    assert (lo, hi) == pytest.approx(want) and n == 3 and sd == pytest.approx(y.std(ddof=1))


def test_correlation_edge_cases_are_reported_not_raised():
    constant = correlation([1, 2, 3, 4], [0.9, 0.9, 0.9, 0.9])
    assert (
        math.isnan(constant.r) and math.isnan(constant.p) and "constant accuracy" in constant.note and constant.n == 4
    )
    flat_x = correlation([2, 2, 2], [0.1, 0.5, 0.9])
    assert math.isnan(flat_x.r) and "constant level" in flat_x.note
    few = correlation([1, 2], [0.3, 0.4])
    assert math.isnan(few.r) and few.n == 2 and "fewer than 3" in few.note
    # NaN pairs (missing trials) are dropped, and n says so
    gappy = correlation([1, 2, np.nan, 4, 5], [0.1, 0.2, 0.3, np.nan, 0.5])
    assert gappy.n == 3 and gappy.r == pytest.approx(1.0)
    up, down = correlation([0, 1, 2, 3], [0.1, 0.2, 0.4, 0.8]), correlation([0, 1, 2, 3], [4, 3, 2, 1])
    assert up.r == pytest.approx(1.0) and down.r == pytest.approx(-1.0)
    assert up.p == pytest.approx(1 / 12) and down.p == pytest.approx(1 / 12)  # exact at n = 4, not t's ~0
    assert band(up.r) == "significant"


def test_describe_by_hand():
    assert describe([0.9, 0.8, 1.0], ddof=1) == pytest.approx((0.9, 0.01, 3))
    assert describe([0.9, 0.8, 1.0], ddof=0) == pytest.approx((0.9, 0.02 / 3, 3))
    mean, var, n = describe([0.5, np.nan], ddof=1)
    assert (mean, n) == (0.5, 1) and math.isnan(var)


def test_segments_split_at_the_peak_inclusive_like_table_3():
    levels = np.array([0, 1, 2, 3, 4, 5, 6.0])
    acc = np.array([0.1, 0.4, 0.8, 0.9, 0.7, 0.5, 0.2])
    peak = peak_level(np.r_[levels, levels], np.r_[acc, acc - 0.01])  # two seeds: mean per level
    assert peak == 3.0
    assert segment_of(levels, [peak]).tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert segment_of(levels, [1.0, 4.0]).tolist() == [0, 0, 1, 1, 1, 2, 2]


def test_multiple_correlation_matches_least_squares_and_the_F_test():
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.uniform(0, 8, 25), "b": rng.uniform(0, 0.4, 25), "c": rng.uniform(0, 1, 25)})
    y = 0.02 * X["a"] - 0.3 * X["b"] + rng.normal(scale=0.05, size=25)
    m = multiple_correlation(y, X)
    A = np.column_stack([np.ones(25), X.to_numpy()])
    beta, *_ = np.linalg.lstsq(A, y, rcond=None)
    yhat = A @ beta
    R = np.corrcoef(y, yhat)[0, 1]  # 000 eq. 6: R = corr(y, ŷ)
    r2 = R**2
    k, n = 3, 25
    F = (r2 / k) / ((1 - r2) / (n - k - 1))
    assert m.R == pytest.approx(R, rel=1e-10)
    assert m.r2 == pytest.approx(r2, rel=1e-10)
    assert m.adj_r2 == pytest.approx(1 - (1 - r2) * (n - 1) / (n - k - 1), rel=1e-10)
    assert m.F == pytest.approx(F, rel=1e-9)
    assert m.p == pytest.approx(sst.f.sf(F, k, n - k - 1), rel=1e-8)
    assert m.coefs.loc[["const", "a", "b", "c"], "coef"].to_numpy() == pytest.approx(beta, rel=1e-9)
    resid = y - yhat
    se = np.sqrt(np.diag(np.linalg.inv(A.T @ A)) * (resid @ resid) / (n - k - 1))
    assert m.coefs["t"].to_numpy() == pytest.approx(beta / se, rel=1e-8)
    q = sst.t.ppf(0.975, n - k - 1)  # the coefficient interval is statsmodels' t interval
    assert m.coefs["ci_low"].to_numpy() == pytest.approx(beta - q * se, rel=1e-8)
    assert m.coefs["ci_high"].to_numpy() == pytest.approx(beta + q * se, rel=1e-8)
    assert math.isnan(m.ci_low) and "without replicates" in m.ci_method  # 25 distinct design points, one run each


def test_multiple_R_gets_a_bootstrap_interval_over_seeds():
    import statsmodels.api as sm

    rng = np.random.default_rng(4)
    grid = pd.DataFrame(
        [(a, b) for a in range(4) for b in range(3)] * 3, columns=["a", "b"], dtype=float
    )  # 12 points x 3 seeds
    y = 0.9 - 0.02 * grid["a"] - 0.01 * grid["b"] + rng.normal(0, 0.01, len(grid))
    m = multiple_correlation(y, grid)
    fit = sm.OLS(y, sm.add_constant(grid)).fit()
    assert m.coefs[["ci_low", "ci_high"]].to_numpy() == pytest.approx(fit.conf_int(0.05).to_numpy(), rel=1e-10)
    assert m.ci_low < m.R < m.ci_high <= 1 and m.ci_method.startswith("bootstrap over seeds")


def test_multiple_correlation_edge_cases():
    X = pd.DataFrame({"a": [0, 1, 2, 3, 4.0], "b": [1, 1, 1, 1, 1.0]})
    y = np.array([0.1, 0.3, 0.2, 0.5, 0.4])
    m = multiple_correlation(y, X)  # constant b is dropped, a alone remains
    assert "constant factor(s) dropped: b" in m.note
    assert m.R == pytest.approx(abs(np.corrcoef(X["a"], y)[0, 1]))
    flat = multiple_correlation(np.full(5, 0.9), X)
    assert math.isnan(flat.R) and "constant accuracy" in flat.note
    tiny = multiple_correlation(y[:3], pd.DataFrame({"a": [0, 1, 2.0], "c": [3, 1, 2.0]}))
    assert math.isnan(tiny.R) and "no residual degrees of freedom" in tiny.note and tiny.n == 3


def _ss(y, idx):
    """Sum of squares of one orthogonal-array column: sum over levels of n (mean - grand)²."""
    return sum((idx == v).sum() * (y[idx == v].mean() - y.mean()) ** 2 for v in np.unique(idx))


def test_range_analysis_and_anova_on_an_L25_array_match_the_column_sums_of_squares():
    levels = {
        "g": [0, 2, 4, 6, 8.0],
        "f": [0, 2, 4, 6, 8.0],
        "ci": [0.2, 0.25, 0.3, 0.35, 0.4],
        "ld": [0, 0.05, 0.1, 0.15, 0.2],
    }
    rows, arr = l25(list(levels), levels)
    df = pd.DataFrame(rows)
    rng = np.random.default_rng(3)
    df["y"] = 0.9 + 0.01 * df["f"] - 0.2 * df["ld"] + rng.normal(scale=0.01, size=25)
    y = df["y"].to_numpy()
    lv, rank = range_analysis(df, "y", list(levels))
    k_f = df.groupby("f")["y"].mean()
    got = lv[lv["factor"] == "f"].set_index("level")
    assert got["k"].to_numpy() == pytest.approx(k_f.to_numpy())
    assert got["K"].to_numpy() == pytest.approx(df.groupby("f")["y"].sum().to_numpy())
    assert (got["n"] == 5).all()
    R = rank.set_index("factor")["R"]
    assert R["f"] == pytest.approx(k_f.max() - k_f.min())
    assert rank.iloc[0]["factor"] == "f" and rank.iloc[0]["rank"] == 1  # the strongest effect ranks first
    table, note = anova(df, "y", list(levels))
    assert note == ""
    t = table.set_index("source")
    # error = the two empty columns of the array, computed directly from them
    ss_error = _ss(y, arr[:, 4]) + _ss(y, arr[:, 5])
    assert t.loc["error", "SS"] == pytest.approx(ss_error, rel=1e-9)
    assert t.loc["error", "df"] == 8
    for c, f in enumerate(levels):
        assert t.loc[f, "SS"] == pytest.approx(_ss(y, arr[:, c]), rel=1e-9)
        F = (_ss(y, arr[:, c]) / 4) / (ss_error / 8)
        assert t.loc[f, "F"] == pytest.approx(F, rel=1e-9)
        assert t.loc[f, "p"] == pytest.approx(sst.f.sf(F, 4, 8), rel=1e-8)


def test_anova_without_error_degrees_of_freedom_says_so():
    levels = {n: [0, 1, 2, 3, 4.0] for n in "abcdef"}
    rows, _ = l25(list(levels), levels)  # all six columns used: no empty column
    df = pd.DataFrame(rows).assign(y=np.random.default_rng(0).normal(size=25))
    table, note = anova(df, "y", list(levels))
    assert "no error degrees of freedom" in note
    assert table["p"].isna().all()


def test_mean_and_cv_per_model_use_the_population_sd():
    rng = np.random.default_rng(4)
    m = pd.DataFrame({"tidx": np.repeat([3, 0, 7], 6), "accuracy": rng.uniform(0.5, 1, 18)}).sample(
        frac=1, random_state=1
    )
    out = mean_cv(m).set_index("tidx")
    assert sorted(out.index) == [0, 3, 7]
    for tid, g in m.groupby("tidx"):
        acc = g["accuracy"].to_numpy()
        assert out.loc[tid, "MA"] == pytest.approx(acc.mean())
        assert out.loc[tid, "CV"] == pytest.approx(100 * np.sqrt(np.mean((acc - acc.mean()) ** 2)) / acc.mean())
        assert out.loc[tid, "test_sets"] == 6


def test_algorithm_1_quadrants_including_ties():
    groups = quadrant([0.9, 0.9, 0.8, 0.8, 0.85, 0.85, np.nan], [1.0, 3.0, 1.0, 3.0, 2.0, 2.0001, 1.0], 0.85, 2.0)
    assert groups.tolist() == ["I", "II", "III", "IV", "I", "II", "undefined"]


def test_pixel_index_reproduces_002_worked_example():
    # 002 eqs. 8-12: w = 1000/10000, p = 64/224² = 0.1276 %, r = 1, a = 200²/224² = 79.72 % -> Pi = 98.30
    # (the paper divides by its rounded p and a; unrounded the same inputs give 98.345)
    assert float(pixel_index(0.10, 0.001276, 1.0, 0.7972)) == pytest.approx(98.30, abs=0.01)
    assert float(pixel_index(0.10, 64 / 224**2, 1.0, 200**2 / 224**2)) == pytest.approx(
        0.10 / (64 / 224**2 * 200**2 / 224**2)
    )
    assert np.isnan(pixel_index([0.1], [0.0])).all()


def test_per_corruption_aggregate_and_mce_by_hand():
    m = pd.DataFrame(
        {
            "tidx": [5] * 4 + [2] * 4,
            "suite": ["c1", "c1", "c2", "c2"] * 2,
            "level": [1, 2, 1, 2.0] * 2,
            "accuracy": [0.9, 0.7, 0.8, 0.6, 0.8, 0.6, 0.9, 0.9],
        }
    )
    p = per_corruption(m, ["c1", "c2"])
    assert p.loc[5, "c1"] == pytest.approx(0.8) and p.loc[5, "c2"] == pytest.approx(0.7)
    assert p.loc[5, "aggregate"] == pytest.approx(0.75)
    assert math.isnan(per_corruption(m[~((m["tidx"] == 2) & (m["suite"] == "c2"))], ["c1", "c2"]).loc[2, "aggregate"])
    err = corruption_errors(m, ["c1", "c2"])
    ce = mce(err, err.loc[5])
    # model 2: c1 errors 0.2+0.4 over model 5's 0.1+0.3 = 1.5; c2: 0.1+0.1 over 0.2+0.4 = 1/3
    assert ce.loc[2, "CE_c1"] == pytest.approx(1.5) and ce.loc[2, "CE_c2"] == pytest.approx(1 / 3)
    assert ce.loc[2, "mCE"] == pytest.approx((1.5 + 1 / 3) / 2)
    assert ce.loc[5, "mCE"] == pytest.approx(1.0)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 30), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_grouped_per_model_scores_equal_pandas_groupby(trials, suites, seed):
    rng = np.random.default_rng(seed)
    names = [f"s{i}" for i in range(suites)]
    m = pd.DataFrame(
        {
            "tidx": rng.integers(0, trials, 200) * 3,
            "suite": rng.choice(names + ["other"], 200),
            "accuracy": rng.uniform(0, 1, 200),
        }
    )
    m["suite"] = m["suite"].astype("category")
    want = (
        m[m["suite"] != "other"]
        .groupby(["tidx", "suite"], observed=True)["accuracy"]
        .mean()
        .unstack("suite")
        .reindex(columns=names)
    )
    got = per_corruption(m, names)
    pd.testing.assert_frame_equal(got[names], want.rename_axis(columns=None), check_names=False)
    g = m.groupby("tidx")["accuracy"]
    cv = mean_cv(m).set_index("tidx")
    assert cv["MA"].to_numpy() == pytest.approx(g.mean().to_numpy())
    assert cv["CV"].to_numpy() == pytest.approx((100 * g.std(ddof=0) / g.mean()).to_numpy())


def test_overlap_score_by_hand():
    plain = {"x": 0.5, "y": 0.6}
    m_x = {"x": 0.9, "y": 0.7}  # training on x: +0.4 on x, +0.1 on y
    m_y = {"x": 0.7, "y": 1.0}  # training on y: +0.2 on x, +0.4 on y
    # 1/2 * (0.2/0.4 + 0.1/0.4) = 0.375
    assert overlap_score(plain, m_x, m_y, "x", "y") == pytest.approx(0.375)
    hurt = {"x": 0.3, "y": 0.5}
    assert overlap_score(plain, m_x, {"x": 0.3, "y": 1.0}, "x", "y") == 0.0  # clipped at 0
    assert math.isnan(overlap_score(plain, hurt, m_y, "x", "y"))


def test_anova_matches_statsmodels_anova_lm_on_unbalanced_replicated_data():
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    levels = {"a": [0, 2, 4, 6, 8.0], "b": [0, 1, 2, 3, 4.0], "c": [0.1, 0.2, 0.3, 0.4, 0.5]}
    rows, _ = l25(list(levels), levels)
    df = pd.DataFrame(rows * 3).iloc[:-4]  # three seeds, four trials missing: unbalanced
    rng = np.random.default_rng(5)
    df["y"] = 0.5 + 0.03 * df["a"] - 0.4 * df["c"] + rng.normal(scale=0.02, size=len(df))
    ours = anova(df, "y", list(levels))[0].set_index("source")
    ref = anova_lm(ols("y ~ C(a) + C(b) + C(c)", df).fit(), typ=2)
    for f in levels:
        for col, rcol in (("SS", "sum_sq"), ("df", "df"), ("F", "F"), ("p", "PR(>F)")):
            assert ours.loc[f, col] == pytest.approx(ref.loc[f"C({f})", rcol], rel=1e-7)
    assert ours.loc["error", "SS"] == pytest.approx(ref.loc["Residual", "sum_sq"], rel=1e-9)
    assert ours.loc["error", "df"] == ref.loc["Residual", "df"]


# --- conditions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factor, level, options, name",
    [
        ("salt_pepper", 0.1, {}, "SP0.1"),
        ("gaussian_var", 0.1, {}, "GA0.1"),
        ("rotation", -30.0, {}, "RL30"),
        ("rotation", 30.0, {}, "RR30"),
        ("rotation", 0.0, {}, "RO0"),
        ("sp>gaussian", 0.1, {"first": 0.1}, "SP0.1GA0.1"),
        ("gaussian>sp", 0.1, {"first": 0.1}, "GA0.1SP0.1"),
        ("sp>rotation", -30.0, {"first": 0.1}, "SP0.1RL30"),
        ("sp>rotation", 0.2, {"second": 30.0}, "SP0.2RR30"),
        ("fgsm_l2", 2.0, {}, None),
        ("corruption:fog", 3.0, {}, None),
    ],
)
def test_training_sets_in_003_notation(factor, level, options, name):
    from robust_ray.analysis.conditions import name_003
    from robust_ray.suites import TWO_FACTOR_69

    assert name_003(factor, level, options) == name
    if ">" in factor:
        assert name in TWO_FACTOR_69  # the names of 003 Table 4


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_condition_lookup_equals_a_merge(rows, seed):
    from robust_ray.analysis.conditions import lookup

    rng = np.random.default_rng(seed)
    conds = pd.DataFrame(
        {"condition": [f"c{i}/{i % 3}" for i in range(7)], "p": rng.uniform(size=7), "corruption": list("abcdefg")}
    )
    names = rng.choice(list(conds["condition"]) + ["unknown"], rows)
    m = pd.DataFrame({"condition": pd.Categorical(names)})
    got = lookup(m, conds.iloc[rng.permutation(7)], ["p", "corruption"])
    want = m.astype(str).merge(conds, on="condition", how="left")
    assert np.allclose(got["p"], want["p"], equal_nan=True)
    missing = lambda x: x if isinstance(x, str) else None  # noqa: E731
    assert [missing(x) for x in got["corruption"]] == [missing(x) for x in want["corruption"]]


def test_suite_kinds_and_parameters_from_condition_names():
    from robust_ray.analysis.conditions import condition_table

    m = pd.DataFrame(
        {
            "suite": ["mnist-test", "mnist-c", "mnist-c", "corruptions", "corruptions", "pixel", "pixel"],
            "condition": ["clean", "1", "2", "fog/3", "snow/3", "n4-set-r1.000-a1.000", "n4-shift-r0.078-a1.000"],
            "level": [0, 1, 2, 3, 3, 4, 4.0],
        }
    )
    c = condition_table("s", None, {"mnist-c": "mnist-c"}, m).set_index("condition")
    assert c.loc["clean", "kind"] == "clean" and c.loc["1", "kind"] == "levels" and c.loc["fog/3", "kind"] == "named"
    assert c.loc["snow/3", "corruption"] == "snow" and c.loc["snow/3", "severity"] == 3
    assert (
        c.loc["n4-shift-r0.078-a1.000", "experiment"] == "range10"
        and c.loc["n4-set-r1.000-a1.000", "experiment"] == "count"
    )
    assert c.loc["n4-shift-r0.078-a1.000", "r"] == pytest.approx(0.078) and math.isnan(
        c.loc["n4-set-r1.000-a1.000", "p"]
    )


def test_wrong_share_modes_by_hand():
    from robust_ray.analysis.pixel import wrong_share

    acc, clean = np.array([0.8, 0.95, 0.5]), np.array([0.9, 0.9, 0.0])
    assert wrong_share(acc, mode="error") == pytest.approx([0.2, 0.05, 0.5])
    assert wrong_share(acc, clean, "drop") == pytest.approx([0.1, 0.0, 0.0])  # a gain is no wrong image
    rel = wrong_share(acc, clean, "relative")
    assert rel[:2] == pytest.approx([0.1 / 0.9, 0.0]) and math.isnan(rel[2])


def test_per_corruption_groups_conditions_by_their_corruption_column():
    m = pd.DataFrame(
        {
            "tidx": [0] * 4 + [1] * 4,
            "corruption": pd.Categorical(["fog", "fog", "snow", "snow"] * 2),
            "level": [1, 3, 1, 3.0] * 2,
            "accuracy": [0.9, 0.5, 0.8, 0.8, 0.7, 0.7, 0.6, 0.2],
        }
    )
    p = per_corruption(m, ["fog", "snow"], key="corruption")
    assert p.loc[0, "fog"] == pytest.approx(0.7) and p.loc[1, "snow"] == pytest.approx(0.4)
    assert p["aggregate"].tolist() == pytest.approx([0.75, 0.55])
    e = corruption_errors(m, ["fog", "snow"], key="corruption")
    assert e.loc[1, "snow"] == pytest.approx(0.4 + 0.8)
