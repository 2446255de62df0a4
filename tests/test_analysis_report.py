"""robust-ray analyze end to end on synthetic results written through the real Parquet
contract: every number in tables/statistics.csv is recomputed here from trials.parquet
with scipy / numpy, and bad input fails with a message naming the file and column while
leaving nothing behind."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from analysis_data import l25, make_sweep, scipy_exact_p, stat
from scipy import stats as sst

from robust_ray.analysis.report import analyze
from robust_ray.cli import main
from robust_ray.errors import UserError


def noise(*key) -> float:
    """Deterministic noise in [-0.01, 0.01] from any key."""
    return (zlib.crc32(repr(key).encode()) % 2001 - 1000) / 1e5


def acc_single(arch, seed, lv, suite, level):
    g, ld = lv.get("gaussian_l2", 0.0), lv.get("label_error", 0.0)
    base = {"train": 0.99, "mnist-test": 0.97, "mnist-c": 0.95 - 0.02 * level + 0.004 * g * level}.get(suite, 0.9)
    return float(
        np.clip(base - 0.3 * ld + (0.02 if arch == "alexnet8" else 0.0) + noise(arch, seed, g, ld, suite, level), 0, 1)
    )


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    root = tmp_path_factory.mktemp("single") / "run"
    make_sweep(
        root,
        "single",
        {"gaussian_l2": ([2.0, 4.0, 6.0, 8.0], None), "label_error": ([0.1, 0.2, 0.3], None)},
        acc_single,
        archs=("lenet5", "alexnet8"),
        seeds=(0, 1),
        failed=lambda a, s, lv: a == "alexnet8" and s == 1 and lv["gaussian_l2"] == 4.0,
    )
    out = analyze(root)
    return root, out, pd.read_csv(out / "tables" / "statistics.csv", keep_default_na=False, na_values=[""])


def test_report_files_are_written(single):
    root, out, _ = single
    assert out == root / "analysis"
    for name in ("report.md", "report.html", "tables/statistics.csv"):
        assert (out / name).is_file(), name
    pngs = list((out / "plots").glob("*.png"))
    assert any("correlation__gaussian_l2" in p.name for p in pngs) and any("mcv" in p.name for p in pngs)
    assert any("severity__label_error" in p.name for p in pngs)
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html  # self-contained
    md = (out / "report.md").read_text()
    assert "1 trial(s) excluded (status ≠ ok; failed: 1)" in md
    assert not list(root.glob(".analysis*"))  # no temporary folder left


@pytest.mark.parametrize("factor, other", [("gaussian_l2", "label_error"), ("label_error", "gaussian_l2")])
@pytest.mark.parametrize("arch", ["lenet5", "alexnet8"])
@pytest.mark.parametrize("suite", ["mnist-test", "mnist-c"])
def test_spearman_mean_variance_match_scipy_on_the_series(single, factor, other, arch, suite):
    root, _, st = single
    t = pd.read_parquet(root / "trials.parquet")
    # the one_factor series: the other factor at baseline (NaN: untouched by the plan, in a failed trial)
    group = t[(t["arch"] == arch) & (t[other].fillna(0.0) == 0.0)]
    ok = group[group["status"] == "ok"]
    x, y = ok[factor].to_numpy(float), ok[f"acc_{suite}"].to_numpy(float)
    r, p = sst.spearmanr(x, y)
    if len(ok) <= 10:  # exact over every pairing (issue 15), as scipy's permutation test
        p = scipy_exact_p(x, y, "spearman")
    kw = dict(analysis="correlation", factor=factor, arch=arch, suite=suite)
    row_r, row_p = stat(st, statistic="r", **kw), stat(st, statistic="p", **kw)
    assert row_r["value"] == pytest.approx(r, abs=1e-12) and row_p["value"] == pytest.approx(p, rel=1e-9)
    assert row_p["p_method"] == (
        "t approximation" if len(ok) > 10 else f"exact permutation (all {math.factorial(len(ok)):,} pairings)"
    )
    assert row_r["n"] == len(ok) and row_r["n_excluded"] == len(group) - len(ok)
    assert stat(st, statistic="mean", **kw)["value"] == pytest.approx(ok[f"acc_{suite}"].mean())
    assert stat(st, statistic="variance", **kw)["value"] == pytest.approx(ok[f"acc_{suite}"].var(ddof=1))
    expected_excluded = 1 if (arch == "alexnet8" and factor == "gaussian_l2") else 0
    assert row_r["n_excluded"] == expected_excluded


def test_mcv_reference_is_the_clean_models_mean(single):
    root, out, st = single
    m = pd.read_parquet(root / "metrics.parquet")
    t = pd.read_parquet(root / "trials.parquet")
    clean = t[(t["gaussian_l2"] == 0) & (t["label_error"] == 0) & (t["status"] == "ok")]["trial_id"]
    per = m[m["trial_id"].isin(clean)].groupby("trial_id")["accuracy"]
    ref_ma = per.mean().mean()
    ref_cv = (100 * per.std(ddof=0) / per.mean()).mean()
    assert stat(st, analysis="mcv", arch="lenet5", statistic="ref_MA")["value"] == pytest.approx(ref_ma)
    assert stat(st, analysis="mcv", arch="alexnet8", statistic="ref_CV")["value"] == pytest.approx(ref_cv)
    models = pd.read_csv(next((out / "tables").glob("*mcv__models.csv"))).set_index("trial_id")
    assert len(models) == (t["status"] == "ok").sum()
    # each model's MA, CV and 003 Algorithm 1 group, recomputed from its test-set accuracies
    ok = m[m["trial_id"].isin(t[t["status"] == "ok"]["trial_id"])].groupby("trial_id")["accuracy"]
    ma, cv = ok.mean(), 100 * ok.std(ddof=0) / ok.mean()
    assert models["MA"].to_dict() == pytest.approx(ma.to_dict())
    assert models["CV (%)"].to_dict() == pytest.approx(cv.to_dict())

    def algorithm_1(a, c):
        if a >= ref_ma:
            return "I" if c <= ref_cv else "II"
        return "III" if c <= ref_cv else "IV"

    expected = {tid: algorithm_1(ma[tid], cv[tid]) for tid in ma.index}
    assert models["group"].to_dict() == expected
    assert len(set(expected.values())) >= 3  # the data straddle the reference, so a swapped quadrant shows


def acc_grid(arch, seed, lv, suite, level):
    g, f = lv["gaussian_l2"], lv["fgsm_l2"]
    return float(np.clip(0.6 + 0.03 * f - 0.01 * g + 0.002 * g * f + noise(seed, g, f, suite, level), 0, 1))


def test_grid_design_gets_multiple_correlation_matching_least_squares(tmp_path):
    root = make_sweep(
        tmp_path / "grid",
        "dual",
        {"gaussian_l2": ([0.0, 2.0, 4.0], None), "fgsm_l2": ([0.0, 2.0, 4.0, 6.0], None)},
        acc_grid,
        design="grid",
        seeds=(0, 1),
    )
    out = analyze(root, tmp_path / "report")
    st = pd.read_csv(out / "tables" / "statistics.csv", keep_default_na=False, na_values=[""])
    t = pd.read_parquet(root / "trials.parquet")
    y = t["acc_mnist-c"].to_numpy()
    A = np.column_stack([np.ones(len(t)), t["gaussian_l2"], t["fgsm_l2"]])
    beta, *_ = np.linalg.lstsq(A, y, rcond=None)
    R = np.corrcoef(y, A @ beta)[0, 1]
    n, k = len(t), 2
    F = (R**2 / k) / ((1 - R**2) / (n - k - 1))
    kw = dict(analysis="multiple", factor="gaussian_l2+fgsm_l2", arch="lenet5", suite="mnist-c")
    assert stat(st, statistic="R", **kw)["value"] == pytest.approx(R, rel=1e-9)
    assert stat(st, statistic="p", **kw)["value"] == pytest.approx(sst.f.sf(F, k, n - k - 1), rel=1e-7)
    assert stat(st, statistic="R", **kw)["n"] == 24
    # range analysis over the grid: R of a factor = max - min of its level means
    k_f = t.groupby("fgsm_l2")["acc_mnist-c"].mean()
    assert stat(st, analysis="orthogonal", factor="fgsm_l2", arch="lenet5", suite="mnist-c", statistic="range")[
        "value"
    ] == pytest.approx(k_f.max() - k_f.min())
    assert any("heatmap" in p.name for p in (out / "plots").glob("*.png"))
    assert any("orthogonal" in p.name for p in (out / "plots").glob("*.png"))


def test_orthogonal_l25_anova_uses_the_empty_columns_as_error(tmp_path):
    levels = {
        "gaussian_l2": [0, 2, 4, 6, 8.0],
        "fgsm_l2": [0, 2, 4, 6, 8.0],
        "class_imbalance": [0.2, 0.25, 0.3, 0.35, 0.4],
        "label_error": [0, 0.05, 0.1, 0.15, 0.2],
    }
    rows, arr = l25(list(levels), levels)

    def acc(arch, seed, lv, suite, level):
        return 0.5 + 0.04 * lv["fgsm_l2"] - 0.5 * lv["label_error"] + noise(tuple(lv.values()), suite, level)

    root = make_sweep(
        tmp_path / "l25",
        "four",
        {f: (v, None) for f, v in levels.items()},
        acc,
        design="orthogonal",
        rows=rows,
        suites={"mnist-test": [0.0], "mnist-a": [1.0, 2.0]},
    )
    out = analyze(root)
    st = pd.read_csv(out / "tables" / "statistics.csv", keep_default_na=False, na_values=[""])
    t = pd.read_parquet(root / "trials.parquet")
    y = t["acc_mnist-a"].to_numpy()
    ss = lambda idx: sum((idx == v).sum() * (y[idx == v].mean() - y.mean()) ** 2 for v in range(5))  # noqa: E731
    ss_err = ss(arr[:, 4]) + ss(arr[:, 5])
    F = (ss(arr[:, 1]) / 4) / (ss_err / 8)
    row = stat(st, analysis="orthogonal", factor="fgsm_l2", arch="lenet5", suite="mnist-a", statistic="p")
    assert row["value"] == pytest.approx(sst.f.sf(F, 4, 8), rel=1e-7) and row["n"] == 25
    ranking = pd.read_csv(next((out / "tables").glob("*orthogonal__ranking.csv")))
    top = ranking[(ranking["suite"] == "mnist-a")].sort_values("rank").iloc[0]
    assert top["factor"] == "fgsm_l2"


def acc_rq2(arch, seed, lv, suite, level):
    f, g = lv["fgsm_l2"], lv["gaussian_l2"]
    if suite == "mnist-a":
        base = 0.3 + 0.1 * min(f, 6) - 0.08 * max(f - 6, 0) + 0.01 * g  # peaks at fgsm 6 (000 Table 3's shape)
    elif suite == "pixels":
        base = 0.95 - 0.002 * level * (1 - 0.05 * g)
    elif suite == "mnist-c":
        base = 0.95 - 0.05 * level + 0.01 * g * level + 0.004 * f * level
    else:
        base = 0.95 - 0.005 * f
    return float(np.clip(base + noise(arch, seed, f, g, suite, level), 0, 1))


@pytest.fixture(scope="module")
def rq2(tmp_path_factory):
    base = tmp_path_factory.mktemp("rq2")
    root = make_sweep(
        base / "run",
        "rq2",
        {"gaussian_l2": ([2.0, 4.0], None), "fgsm_l2": ([2.0, 4.0, 6.0, 8.0, 10.0], None)},
        acc_rq2,
        archs=("lenet5", "alexnet8"),
        suites={"mnist-test": [0.0], "mnist-c": [1.0, 2.0], "mnist-a": [1.0, 2.0], "pixels": [0.0, 4.0, 16.0, 64.0]},
    )
    ref = base / "published.csv"
    ref.write_text(
        "table,analysis,factor,arch,suite,segment,statistic,value\n"
        "000-T3,segments,fgsm_l2,lenet5,mnist-a,I,r,0.998\n"
        "000-T3,segments,fgsm_l2,lenet5,mnist-a,II,p,0.058\n"
        "000-T3,segments,fgsm_l2,lenet5,mnist-a,II,mean,0.676\n"
        "000-T3,segments,fgsm_l2,lenet5,mnist-zz,I,r,0.5\n"
    )
    recipe = base / "rq2.yaml"
    recipe.write_text(f"""
name: rq2
suites: [mnist-test, mnist-c, mnist-a]
variance_ddof: 0
reference: {ref.name}
analyses:
  - type: correlation
    factors: [fgsm_l2]
    methods: [spearman, pearson]
    plot: false
  - type: segments
    factor: fgsm_l2
    peak_of: mnist-a
  - type: segments
    id: fixed
    factor: fgsm_l2
    breakpoints: [4.0]
  - type: segments
    id: per-arch
    factor: fgsm_l2
    breakpoints: {{lenet5: [4.0], alexnet8: [6.0], vgg19: [1.0]}}
  - type: corruption
    baseline_arch: lenet5
  - type: mcv
    reference: {{mean: 0.9, cv: 5.0}}
  - type: pixel_index
    suite: pixels
    image_pixels: 784
    w: drop
    clean_suite: mnist-test
  - type: overlap
    clean_suite: mnist-test
    corruptions:
      gauss: {{factor: gaussian_l2, level: 4.0, suite: mnist-c}}
      adv: {{factor: fgsm_l2, level: 4.0, suite: mnist-a}}
""")
    out = analyze(root, base / "out", [str(recipe)])
    st = pd.read_csv(out / "tables" / "statistics.csv", keep_default_na=False, na_values=[""])
    return root, out, st


def test_segments_split_at_the_peak_of_mnist_a(rq2):
    root, out, st = rq2
    t = pd.read_parquet(root / "trials.parquet")
    s = t[(t["arch"] == "lenet5") & (t["gaussian_l2"] == 0)]
    first = s[s["fgsm_l2"] <= 6.0]  # the peak (6) closes Segment I
    second = s[s["fgsm_l2"] > 6.0]
    r1 = stat(
        st,
        step="segments",
        analysis="segments",
        factor="fgsm_l2",
        arch="lenet5",
        suite="mnist-a",
        segment="I",
        statistic="r",
    )
    assert r1["value"] == pytest.approx(sst.spearmanr(first["fgsm_l2"], first["acc_mnist-a"])[0]) and r1["n"] == len(
        first
    )
    r2 = stat(
        st,
        step="segments",
        analysis="segments",
        factor="fgsm_l2",
        arch="lenet5",
        suite="mnist-c",
        segment="II",
        statistic="variance",
    )
    assert r2["value"] == pytest.approx(np.var(second["acc_mnist-c"], ddof=0))  # variance_ddof: 0
    assert r2["n"] == 2
    seg_ii = stat(
        st,
        step="segments",
        analysis="segments",
        factor="fgsm_l2",
        arch="lenet5",
        suite="mnist-a",
        segment="II",
        statistic="r",
    )
    assert math.isnan(seg_ii["value"]) and "fewer than 3" in seg_ii["note"]
    fixed = pd.read_csv(next((out / "tables").glob("rq2__rq2__fixed__fgsm_l2.csv")))
    assert set(fixed["levels"]) == {"[0, 4]", "[6, 10]"}


def test_segments_split_each_architecture_at_its_own_breakpoints(rq2):
    """000 Table 3 splits LeNet-5 at 8.0 and AlexNet-8 at 7.0: a mapping gives each its own."""
    root, out, st = rq2
    t = pd.read_parquet(root / "trials.parquet")
    table = pd.read_csv(out / "tables" / "rq2__rq2__per-arch__fgsm_l2.csv")
    spans = table.groupby(["arch", "segment"])["levels"].first().to_dict()
    assert spans == {
        ("lenet5", "I"): "[0, 4]",
        ("lenet5", "II"): "[6, 10]",
        ("alexnet8", "I"): "[0, 6]",
        ("alexnet8", "II"): "[8, 10]",
    }
    for arch, cut in (("lenet5", 4.0), ("alexnet8", 6.0)):
        s = t[(t["arch"] == arch) & (t["gaussian_l2"] == 0) & (t["fgsm_l2"] <= cut)]
        r = stat(
            st,
            step="per-arch",
            analysis="segments",
            factor="fgsm_l2",
            arch=arch,
            suite="mnist-c",
            segment="I",
            statistic="r",
        )
        assert r["value"] == pytest.approx(sst.spearmanr(s["fgsm_l2"], s["acc_mnist-c"])[0]) and r["n"] == len(s)
    # a mapped architecture the results lack is no error (the paper's archs, a run of some), but the report says so
    text = (out / "report.md").read_text()
    assert "per architecture: lenet5 at 4; alexnet8 at 6" in text and "breakpoints given for vgg19 not used" in text


@pytest.mark.parametrize(
    "breakpoints, message",
    [
        (
            "{lenet5: [8.0]}",
            r"analyses\[0\]\.breakpoints: no breakpoints for architecture 'alexnet8' of .* \(the mapping names lenet5\)",
        ),
        (
            "{lenet: [8.0], alexnet8: [7.0]}",
            r"analyses\[0\]\.breakpoints: no breakpoints for architecture 'lenet5'",
        ),  # a typo
        ("{lenet5: 8.0, alexnet8: [7.0]}", r"analyses\[0\]\.breakpoints: lenet5: 8\.0 is not a list of levels"),
        ("{lenet5: [eight]}", r"analyses\[0\]\.breakpoints: lenet5: 'eight' is not a level"),
        ("[8.0, x]", r"analyses\[0\]\.breakpoints: 'x' is not a level"),
        ("{}", r"analyses\[0\]\.breakpoints: give a list of levels for every architecture"),
        ("8.0", r"analyses\[0\]\.breakpoints: give a list of levels for every architecture"),
    ],
)
def test_bad_per_architecture_breakpoints_name_the_recipe_and_key(tmp_path, breakpoints, message):
    root = make_sweep(tmp_path / "r", "s", {"fgsm_l2": ([2.0, 4.0], None)}, acc_single, archs=("lenet5", "alexnet8"))
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(
        f"name: bad\nanalyses:\n  - type: segments\n    factor: fgsm_l2\n    breakpoints: {breakpoints}\n"
    )
    with pytest.raises(UserError, match=rf"bad\.yaml: {message}"):
        analyze(root, None, [str(recipe)])
    _nothing_written(root)


def test_pearson_is_reported_next_to_spearman(rq2):
    root, _, st = rq2
    t = pd.read_parquet(root / "trials.parquet")
    s = t[(t["arch"] == "alexnet8") & (t["gaussian_l2"] == 0)]
    row = stat(st, analysis="correlation", factor="fgsm_l2", arch="alexnet8", suite="mnist-c", statistic="pearson_r")
    assert row["value"] == pytest.approx(np.corrcoef(s["fgsm_l2"], s["acc_mnist-c"])[0, 1])


def test_mce_pixel_index_and_overlap(rq2):
    root, out, st = rq2
    t = pd.read_parquet(root / "trials.parquet").set_index("trial_id")
    m = pd.read_parquet(root / "metrics.parquet")
    clean_lenet = t[(t["arch"] == "lenet5") & (t["gaussian_l2"] == 0) & (t["fgsm_l2"] == 0)].index[0]
    clean_alex = t[(t["arch"] == "alexnet8") & (t["gaussian_l2"] == 0) & (t["fgsm_l2"] == 0)].index[0]
    err = (1 - m.set_index("trial_id")["accuracy"]).groupby(["trial_id", m.set_index("trial_id")["suite"]]).sum()
    want = np.mean([err[(clean_alex, s)] / err[(clean_lenet, s)] for s in ("mnist-c", "mnist-a")])
    models = pd.read_csv(next((out / "tables").glob("*corruption__models.csv")))
    got = models[models["model"].str.startswith("alexnet8 gaussian_l2=0 fgsm_l2=0")]["mCE"].iloc[0]
    assert got == pytest.approx(want)
    assert stat(st, analysis="corruption", arch="lenet5", factor="clean", statistic="mCE")["value"] == pytest.approx(
        1.0
    )

    pix = pd.read_csv(next((out / "tables").glob("*pixel_index__models.csv")))
    row = pix[(pix["model"] == "lenet5 gaussian_l2=0 fgsm_l2=0") & (pix["level"] == 16)].iloc[0]
    a_clean = m[(m["trial_id"] == clean_lenet) & (m["suite"] == "mnist-test")]["accuracy"].iloc[0]
    a16 = m[(m["trial_id"] == clean_lenet) & (m["suite"] == "pixels") & (m["level"] == 16)]["accuracy"].iloc[0]
    assert row["Pi"] == pytest.approx(max(0.0, a_clean - a16) / (16 / 784))
    assert pix[pix["level"] == 0]["Pi"].isna().all()

    def rob(tid, suite):
        return t.loc[tid, f"acc_{suite}"] / t.loc[tid, "acc_mnist-test"]

    a = t[t["arch"] == "lenet5"]
    mg = a[(a["gaussian_l2"] == 4) & (a["fgsm_l2"] == 0)].index[0]
    ma = a[(a["gaussian_l2"] == 0) & (a["fgsm_l2"] == 4)].index[0]
    c = clean_lenet
    g1 = rob(mg, "mnist-c") - rob(c, "mnist-c")
    g2 = rob(ma, "mnist-a") - rob(c, "mnist-a")
    want = max(
        0.0, 0.5 * ((rob(ma, "mnist-c") - rob(c, "mnist-c")) / g1 + (rob(mg, "mnist-a") - rob(c, "mnist-a")) / g2)
    )
    assert g1 > 0 and g2 > 0  # the data are made so that training on each corruption helps against it
    got = stat(st, analysis="overlap", arch="lenet5", statistic="overlap")["value"]
    assert got == pytest.approx(want) and 0 < got < 1


def test_reference_comparison_matches_by_identifiers(rq2):
    _, out, st = rq2
    cmp = pd.read_csv(out / "tables" / "rq2__reference.csv")
    assert len(cmp) == 4
    first = cmp.iloc[0]
    ours = stat(
        st,
        step="segments",
        analysis="segments",
        factor="fgsm_l2",
        arch="lenet5",
        suite="mnist-a",
        segment="I",
        statistic="r",
    )["value"]
    assert first["reproduced"] == pytest.approx(ours) and first["difference"] == pytest.approx(ours - 0.998)
    # MNIST-A rises 0.2 per level up to the peak, far above the noise: Segment I is monotone,
    # r = 1, in the published 0.998's band ("significant")
    assert ours == pytest.approx(1.0)
    assert (first["sign"], first["strength"], first["agreement"]) == ("same", "same (significant)", "same band")
    assert cmp.iloc[3]["agreement"].startswith("not reproduced")
    assert "Comparison with the published values" in (out / "report.md").read_text()


def test_constant_accuracy_is_reported_as_undefined(tmp_path):
    root = make_sweep(tmp_path / "flat", "flat", {"label_error": ([0.1, 0.2, 0.3], None)}, lambda *a: 0.5)
    st = pd.read_csv(analyze(root) / "tables" / "statistics.csv", keep_default_na=False, na_values=[""])
    row = stat(st, analysis="correlation", factor="label_error", suite="mnist-c", statistic="r")
    assert (
        math.isnan(row["value"])
        and row["strength"] == "undefined"
        and "constant accuracy" in row["note"]
        and row["n"] == 4
    )


def test_several_sweeps_from_a_parent_folder_or_a_glob(tmp_path):
    make_sweep(tmp_path / "all" / "a", "sweep-a", {"label_error": ([0.1, 0.2], None)}, acc_single)
    make_sweep(tmp_path / "all" / "b", "sweep-b", {"gaussian_l2": ([2.0, 4.0], None)}, acc_single, spec=False)
    out = analyze(tmp_path / "all")
    assert out == tmp_path / "all" / "analysis"
    st = pd.read_csv(out / "tables" / "statistics.csv", keep_default_na=False, na_values=[""])
    assert set(st["sweep"]) == {"sweep-a", "sweep-b"}
    md = (out / "report.md").read_text()
    assert "no sweep.json; design inferred" in md
    out2 = analyze(str(tmp_path / "all" / "*"))  # the analysis folder from above matches the glob too, and is skipped
    assert out2 == out
    st2 = pd.read_csv(out2 / "tables" / "statistics.csv", keep_default_na=False, na_values=[""])
    assert len(st2) == len(st)


# --- bad input: a clear message naming the file (and column), nothing written ---------


def _nothing_written(parent: Path, name: str = "analysis"):
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}")]


def test_folder_without_results(tmp_path):
    with pytest.raises(UserError, match="no results here"):
        analyze(tmp_path)
    _nothing_written(tmp_path)


def test_parquet_from_another_tool(tmp_path):
    pd.DataFrame({"trial_id": ["x"], "acc": [0.5]}).to_parquet(tmp_path / "trials.parquet")
    with pytest.raises(UserError, match=r"trials\.parquet: not a robust_ray results file"):
        analyze(tmp_path)
    _nothing_written(tmp_path)


def test_newer_schema_is_refused(tmp_path):
    root = make_sweep(tmp_path / "r", "s", {"label_error": ([0.1], None)}, acc_single)
    table = pq.read_table(root / "metrics.parquet")
    pq.write_table(
        table.replace_schema_metadata({**table.schema.metadata, b"robust_ray.schema": b"2"}), root / "metrics.parquet"
    )
    with pytest.raises(UserError, match=r"metrics\.parquet: written with results schema 2, newer"):
        analyze(root)
    _nothing_written(root)


def test_missing_contract_column(tmp_path):
    root = make_sweep(tmp_path / "r", "s", {"label_error": ([0.1], None)}, acc_single)
    from robust_ray.results import write_table

    write_table(pd.read_parquet(root / "trials.parquet").drop(columns="status"), str(root / "trials.parquet"))
    with pytest.raises(UserError, match=r"trials\.parquet: missing column 'status'"):
        analyze(root)


def test_recipe_naming_a_missing_column_names_recipe_and_file(tmp_path, capsys):
    root = make_sweep(tmp_path / "r", "s", {"label_error": ([0.1, 0.2], None)}, acc_single)
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("name: bad\nanalyses:\n  - type: correlation\n    factors: [fgsm_l2]\n")
    code = main(["analyze", str(root), "--recipe", str(recipe)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{recipe}: analyses[0].factors[0]: no factor column 'fgsm_l2' in {root}/trials.parquet" in err
    _nothing_written(root)


def test_recipe_structure_errors_name_the_key(tmp_path):
    root = make_sweep(tmp_path / "r", "s", {"label_error": ([0.1, 0.2], None)}, acc_single)
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(
        "name: bad\nanalyses:\n  - type: segments\n    factor: label_error\n    peak_of: mnist-c\n    breakpoints: [0.1]\n"
    )
    with pytest.raises(UserError, match=r"bad\.yaml: analyses\[0\]: give exactly one of peak_of"):
        analyze(root, None, [str(recipe)])
    _nothing_written(root)


def test_failure_while_computing_leaves_nothing_half_written(tmp_path):
    root = make_sweep(
        tmp_path / "g",
        "g",
        {"gaussian_l2": ([2.0, 4.0], None), "label_error": ([0.1, 0.2], None)},
        acc_single,
        design="grid",
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nanalyses:\n  - type: correlation\n  - type: corruption\n    baseline_arch: lenet5\n")
    with pytest.raises(UserError, match="no clean-trained lenet5 model"):
        analyze(root, tmp_path / "out", [str(recipe)])  # the grid has no all-baseline trial
    _nothing_written(tmp_path, "out")


def test_output_folder_is_replaced_only_when_it_is_an_analysis(tmp_path):
    root = make_sweep(tmp_path / "r", "s", {"label_error": ([0.1, 0.2], None)}, acc_single)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="not a robust_ray analysis folder"):
        analyze(root, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    first = analyze(root)
    (first / "stale.txt").write_text("old")
    second = analyze(root)
    assert second == first and not (second / "stale.txt").exists() and (second / "report.md").is_file()


def test_spec_names_a_factor_the_trials_lack(tmp_path):
    root = make_sweep(tmp_path / "r", "s", {"label_error": ([0.1, 0.2], None)}, acc_single)
    spec = json.loads((root / "sweep.json").read_text())
    spec["design"]["factors"]["fgsm_l2"] = {"levels": [1.0], "baseline": None}
    (root / "sweep.json").write_text(json.dumps(spec))
    with pytest.raises(UserError, match=r"trials\.parquet: no column 'fgsm_l2' for the factor named in .*sweep\.json"):
        analyze(root)


def test_every_shipped_recipe_parses_and_the_quickstart_one_runs(single, tmp_path):
    from robust_ray.analysis.recipes import load_recipe

    # reproductions' recipes too; not their findings.yaml / not-run.yaml (robust_ray.reproductions reads those)
    shipped = sorted(
        p
        for p in (Path(__file__).parents[1] / "analysis").rglob("*.yaml")
        if p.name not in ("findings.yaml", "not-run.yaml")
    )
    assert len(shipped) >= 5
    for path in shipped:
        assert load_recipe(path).analyses, path
    root, _, _ = single  # shaped like sweeps/quickstart.yaml: gaussian_l2, label_error; mnist-test, mnist-c
    out = analyze(root, tmp_path / "qs", [str(Path(__file__).parents[1] / "analysis" / "quickstart.yaml")])
    st = pd.read_csv(out / "tables" / "statistics.csv", keep_default_na=False, na_values=[""])
    assert {"r", "pearson_r", "ref_MA"} <= set(st["statistic"])


@pytest.mark.parametrize("recipe", ["000-rq2-fgsm.yaml", "reproductions/000-rq1-rq4-reduced/paper-split.yaml"])
def test_paper_split_recipes_split_each_architecture_where_000_table_3_does(recipe):
    from robust_ray.analysis.recipes import load_recipe

    steps = [a for a in load_recipe(Path(__file__).parents[1] / "analysis" / recipe).analyses if a.id == "paper-split"]
    assert len(steps) == 1
    # 000 §3.2: LeNet-5 Segment I [0.0, 8.0], AlexNet-8 Segment I [0.0, 7.0]
    assert (steps[0].cuts("lenet5"), steps[0].cuts("alexnet8")) == ([8.0], [7.0])


def test_a_sweep_whose_trials_all_failed_is_reported_with_n_0(tmp_path):
    root = make_sweep(
        tmp_path / "r", "allfail", {"label_error": ([0.1, 0.2], None)}, acc_single, failed=lambda *a: True
    )
    st = pd.read_csv(analyze(root) / "tables" / "statistics.csv", keep_default_na=False, na_values=[""])
    row = stat(st, analysis="correlation", suite="mnist-c", statistic="r")
    assert math.isnan(row["value"]) and row["n"] == 0 and row["n_excluded"] == 3
