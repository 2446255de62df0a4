"""robust-ray analyze on suites of named conditions (corruptions, pixel, two-factor-69) next to
a level suite (mnist-c), written through the real Parquet contract with suites.json. Every
number is recomputed here from metrics.parquet and suites.json with pandas merges, numpy and
scipy, not with the analysis code."""

from __future__ import annotations

import json
import math
import shutil
import zlib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from analysis_data import make_sweep, stat
from scipy import stats as sst

from robust_ray.analysis.report import analyze
from robust_ray.errors import UserError
from robust_ray.results import FLIPPED, METRICS_SCHEMA, write_table

FACTORS = {
    "sp>gaussian": ([0.1, 0.2], None, {"first": 0.1}),
    "rotation": ([-30.0, 30.0], None),
    "corruption:fog": ([3.0], None),
    "corruption:contrast": ([3.0], None),
    "corruption:snow": ([2.0, 4.0], None),
}
SUITES = {
    "mnist-test": [0.0],
    "mnist-c": [1.0, 2.0, 3.0],
    "corruptions": {"type": "corruptions", "levels": [1.0, 3.0], "n": 50},
    "pixel": {"type": "pixel", "n": 100},
    "two-factor-69": {"type": "two-factor-69", "n": 100},
}


def noise(*key) -> float:
    return (zlib.crc32(repr(key).encode()) % 2001 - 1000) / 1e5


def acc_named(arch, seed, lv, suite, level, cond):
    """Accuracy that depends on the condition, not only on its level: corruptions differ at
    one severity, training on fog/snow helps both (they overlap), contrast only itself."""
    p = cond["params"] if cond else {}
    lv = {f: 0.0 for f in FACTORS} | lv
    skill = (
        0.82
        + (0.03 if arch == "alexnet8" else 0.0)
        + 0.1 * lv["sp>gaussian"]
        + noise(arch, seed, sorted(lv.items()), suite, cond and cond["name"])
    )
    if suite == "corruptions":
        c, s = p["corruption"], p["severity"]
        gain = {
            "fog": 0.04 * lv["corruption:fog"] + 0.02 * lv["corruption:snow"],
            "snow": 0.03 * lv["corruption:snow"] + 0.03 * lv["corruption:fog"],
            "contrast": 0.05 * lv["corruption:contrast"],
        }.get(c, 0.0)
        return float(np.clip(skill - 0.05 * s - 0.01 * (zlib.crc32(c.encode()) % 10) + gain, 0, 1))
    if suite == "pixel":
        if cond["perturbation"] is None:  # the pixel suite's unchanged images
            return float(np.clip(skill + 0.01, 0, 1))
        return float(np.clip(skill - 2.0 * p["p"] * p["r"] * p["a"] * (1 - 2 * lv["sp>gaussian"]), 0, 1))
    if suite == "two-factor-69":
        rotated = cond["perturbation"] is not None and "rotation" in cond["perturbation"]
        return float(np.clip(skill - 0.002 * p["k"] - (0.1 - 0.002 * abs(lv["rotation"]) if rotated else 0.0), 0, 1))
    if suite == "mnist-c":
        return float(np.clip(skill - 0.04 * level, 0, 1))
    return float(np.clip(skill + 0.01, 0, 1))


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    base = tmp_path_factory.mktemp("named")
    root = make_sweep(
        base / "run", "named", FACTORS, acc_named, archs=("lenet5", "alexnet8"), seeds=(0, 1), suites=SUITES
    )
    recipe = base / "r.yaml"
    recipe.write_text(
        "name: r\ndefaults: true\nanalyses:\n  - type: corruption\n    id: mce\n    baseline_arch: lenet5\n"
    )
    out = analyze(root, base / "out", [str(recipe)])
    st = pd.read_csv(out / "tables" / "statistics.csv", keep_default_na=False, na_values=[""])
    return root, out, st


def frames(root):
    """trials, and metrics joined with suites.json's conditions (a plain pandas merge)."""
    t = pd.read_parquet(root / "trials.parquet").set_index("trial_id")
    m = pd.read_parquet(root / "metrics.parquet")
    rows = []
    for suite, s in json.loads((root / "suites.json").read_text()).items():
        for c in s["conditions"]:
            rows.append({"suite": suite, "condition": c["name"], "perturbation": c["perturbation"], **c["params"]})
    conds = pd.DataFrame(rows)
    m = m.astype({"suite": str, "condition": str, "trial_id": str}).merge(conds, on=["suite", "condition"], how="left")
    return t, m


def table(out, pattern):
    return pd.read_csv(next((out / "tables").glob(pattern)), keep_default_na=False, na_values=[""])


def trained_on(t: pd.DataFrame, levels: dict | None = None) -> pd.Index:
    """Trials whose every factor is 0 except those in ``levels``."""
    want = {f: 0.0 for f in FACTORS} | (levels or {})
    mask = np.ones(len(t), bool)
    for f, v in want.items():
        mask &= np.isclose(t[f].to_numpy(float), v)
    return t.index[mask]


# --- 004: corruptions ---------------------------------------------------------------------


def test_per_corruption_accuracy_is_the_mean_over_each_corruptions_severities(named):
    root, out, st = named
    t, m = frames(root)
    c = m[m["suite"] == "corruptions"]
    assert c["corruption"].notna().all() and c["corruption"].nunique() == 18  # grayscale: saturate left out
    P = c.groupby(["trial_id", "corruption"])["accuracy"].mean().unstack()
    models = table(out, "r__named__corruption__models.csv").set_index("trial_id")
    assert set(models.index) == set(t.index)
    for name in P.columns:
        assert models[name].to_numpy() == pytest.approx(P.loc[models.index, name].to_numpy(), abs=1e-12)
    assert models["aggregate"].to_numpy() == pytest.approx(P.loc[models.index].mean(axis=1).to_numpy(), abs=1e-12)
    # statistics: per architecture x training set, the mean over the two seeds
    fog = trained_on(t, {"corruption:fog": 3.0})
    fog_lenet = [i for i in fog if t.loc[i, "arch"] == "lenet5"]
    assert len(fog_lenet) == 2
    row = stat(
        st,
        step="corruption",
        analysis="corruption",
        arch="lenet5",
        factor="corruption:fog=3",
        segment="fog",
        statistic="P_c",
    )
    assert row["value"] == pytest.approx(P.loc[fog_lenet, "fog"].mean()) and row["n"] == 2
    agg = stat(st, step="corruption", analysis="corruption", arch="alexnet8", factor="clean", statistic="aggregate")
    clean_alex = [i for i in trained_on(t) if t.loc[i, "arch"] == "alexnet8"]
    assert agg["value"] == pytest.approx(P.loc[clean_alex].mean(axis=1).mean())


def test_per_condition_table_keeps_conditions_of_one_severity_apart(named):
    root, out, _ = named
    t, m = frames(root)
    cond = table(out, "r__named__corruption__conditions.csv").set_index("condition")
    assert len(cond) == 36 and {"fog/3", "snow/1"} <= set(cond.index)
    snow_trained = trained_on(t, {"corruption:snow": 4.0})
    arch_of = t["arch"]
    ids = [i for i in snow_trained if arch_of[i] == "alexnet8"]
    for name in ("fog/3", "contrast/3", "snow/3"):
        want = m[(m["suite"] == "corruptions") & (m["condition"] == name) & m["trial_id"].isin(ids)]["accuracy"].mean()
        assert cond.loc[name, "alexnet8 / corruption:snow=4"] == pytest.approx(want)
    # two corruptions at one severity really differ here, so averaging them would show
    assert cond.loc["fog/3", "lenet5 / clean"] != pytest.approx(cond.loc["contrast/3", "lenet5 / clean"])


def test_mce_against_the_clean_lenet5(named):
    root, out, st = named
    t, m = frames(root)
    c = m[m["suite"] == "corruptions"].assign(err=lambda x: 1 - x["accuracy"])
    E = c.groupby(["trial_id", "corruption"])["err"].sum().unstack()
    base = E.loc[[i for i in trained_on(t) if t.loc[i, "arch"] == "lenet5"]].mean()
    models = table(out, "r__named__mce__models.csv").set_index("trial_id")
    alex = [i for i in trained_on(t, {"corruption:contrast": 3.0}) if t.loc[i, "arch"] == "alexnet8"][0]
    assert models.loc[alex, "mCE"] == pytest.approx((E.loc[alex] / base).mean())
    assert models.loc[alex, "CE_contrast"] == pytest.approx(E.loc[alex, "contrast"] / base["contrast"])
    assert stat(st, step="mce", arch="lenet5", factor="clean", statistic="mCE")["value"] == pytest.approx(1.0)


# --- 003: two-factor-69 -------------------------------------------------------------------


def test_mcv_uses_the_69_conditions_of_two_factor_69(named):
    root, out, st = named
    t, m = frames(root)
    tf = m[m["suite"] == "two-factor-69"]
    g = tf.groupby("trial_id")["accuracy"]
    MA, CV = g.mean(), 100 * g.std(ddof=0) / g.mean()
    clean_acc = tf[tf["condition"] == "CLEAN"].set_index("trial_id")["accuracy"]
    models = table(out, "r__named__mcv__models.csv").set_index("trial_id")
    assert (models["test sets"] == 69).all()
    assert models["MA"].to_numpy() == pytest.approx(MA[models.index].to_numpy())
    assert models["CV (%)"].to_numpy() == pytest.approx(CV[models.index].to_numpy())
    assert models["clean accuracy"].to_numpy() == pytest.approx(clean_acc[models.index].to_numpy())
    # reference: the mean (MA, CV) of the clean-trained models; Algorithm 1 by hand
    clean = trained_on(t)
    r_ma, r_cv = MA[clean].mean(), CV[clean].mean()
    assert stat(st, step="mcv", arch="lenet5", statistic="ref_MA")["value"] == pytest.approx(r_ma)
    for i in models.index:
        want = ("I" if CV[i] <= r_cv else "II") if MA[i] >= r_ma else ("III" if CV[i] <= r_cv else "IV")
        assert models.loc[i, "group"] == want
    # 003's names of the training sets
    assert set(models["training set"]) == {
        "clean",
        "SP0.1GA0.1",
        "SP0.1GA0.2",
        "RL30",
        "RR30",
        "corruption:fog=3",
        "corruption:contrast=3",
        "corruption:snow=2",
        "corruption:snow=4",
    }
    rl = trained_on(t, {"rotation": -30.0})
    assert set(models.loc[rl, "training set"]) == {"RL30"}
    # 003 Table 2: correlation of CV with MA over every model
    r = stat(st, step="mcv", factor="CV~MA", statistic="r")
    assert r["value"] == pytest.approx(sst.spearmanr(CV[models.index], MA[models.index])[0]) and r["n"] == len(models)
    row = stat(st, step="mcv", arch="alexnet8", factor="SP0.1GA0.2", statistic="CV")
    ids = trained_on(t, {"sp>gaussian": 0.2})
    assert (
        row["value"] == pytest.approx(CV[[i for i in ids if t.loc[i, "arch"] == "alexnet8"]].mean()) and row["n"] == 2
    )


# --- 002: Pixel-index ---------------------------------------------------------------------


def test_pixel_index_uses_p_r_a_of_suites_json_and_clean_images_of_the_same_subset(named):
    root, out, st = named
    t, m = frames(root)
    px = m[(m["suite"] == "pixel") & (m["condition"] != "clean")].copy()
    assert px["p"].notna().all() and len(px.groupby("condition")) == 49  # 28x28: 64 pixels do not fit the 6x6 square
    # the pixel suite's own unchanged images are the clean reference
    clean = m[(m["suite"] == "pixel") & (m["condition"] == "clean")].set_index("trial_id")["accuracy"]
    a0 = px["trial_id"].map(clean)
    px["w"] = np.clip(a0 - px["accuracy"], 0, None) / a0
    px["Pi"] = px["w"] / (px["p"] * px["r"] * px["a"])
    got = table(out, "r__named__pixel_index__models.csv").merge(
        px[["trial_id", "condition", "w", "Pi"]], on=["trial_id", "condition"], suffixes=("", "_want")
    )
    assert len(got) == len(px)
    assert got["w"].to_numpy() == pytest.approx(got["w_want"].to_numpy(), abs=1e-12)
    assert got["Pi"].to_numpy() == pytest.approx(got["Pi_want"].to_numpy(), rel=1e-9, abs=1e-12)
    assert (got["Pi"] > 0).any()
    ids = [i for i in trained_on(t) if t.loc[i, "arch"] == "lenet5"]
    row = stat(
        st, analysis="pixel_index", arch="lenet5", factor="clean", segment="n16-shift-r0.549-a1.000", statistic="Pi"
    )
    want = px[(px["condition"] == "n16-shift-r0.549-a1.000") & px["trial_id"].isin(ids)]["Pi"].mean()
    assert row["value"] == pytest.approx(want) and row["n"] == 2
    md = (out / "report.md").read_text()
    assert "condition clean of pixel (the same images)" in md
    for fam in ("count", "range", "area"):
        assert (out / "plots" / f"r__named__pixel_index__{fam}__lenet5.png").is_file()


def test_pixel_index_counts_the_images_a_change_turned_wrong_where_recorded(named, tmp_path):
    """Where the metrics carry ``flipped`` (images right unchanged, wrong changed: what a run
    records), w is that count over the images right unchanged (002 Table 4, eq. 8), not the
    accuracy drop: a change that repairs images cannot hide the ones it broke."""
    root, _, _ = named
    copy = tmp_path / "run"
    shutil.copytree(root, copy)
    m = pd.read_parquet(copy / "metrics.parquet")
    px = (m["suite"] == "pixel") & (m["condition"] != "clean")
    right = (m[(m["suite"] == "pixel") & (m["condition"] == "clean")].set_index("trial_id")["accuracy"] * 100).round()
    # broke 3 images more than the accuracy says (3 others repaired), where it could
    drop = (m.loc[px, "trial_id"].map(right) - (m.loc[px, "accuracy"] * 100).round()).clip(lower=0)
    m["flipped"] = pd.array([pd.NA] * len(m), dtype="Int64")
    m.loc[px, "flipped"] = (drop + 3).clip(upper=m.loc[px, "trial_id"].map(right)).astype("int64").to_numpy()
    write_table(m, str(copy / "metrics.parquet"), METRICS_SCHEMA.append(FLIPPED))
    out = analyze(copy, tmp_path / "out")
    got = table(out, "default__named__pixel_index__models.csv")
    want = m[px].assign(w=m.loc[px, "flipped"].astype(float) / m.loc[px, "trial_id"].map(right))
    got = got.merge(want[["trial_id", "condition", "w"]], on=["trial_id", "condition"], suffixes=("", "_want"))
    assert len(got) == px.sum()
    assert got["w"].to_numpy() == pytest.approx(got["w_want"].to_numpy(), abs=1e-12)
    assert "counted per image" in (out / "report.md").read_text()


# --- 001: overlapping score ---------------------------------------------------------------


def test_overlap_score_from_the_corruption_factors(named):
    root, out, st = named
    t, m = frames(root)
    c = m[m["suite"] == "corruptions"]
    P = c.groupby(["trial_id", "corruption"])["accuracy"].mean().unstack()
    arch = t["arch"]

    def R(ids, corruption):  # seeds averaged, then relative to the clean test set
        return P.loc[ids, corruption].mean() / t.loc[ids, "acc_mnist-test"].mean()

    for a in ("lenet5", "alexnet8"):
        M = [i for i in trained_on(t) if arch[i] == a]
        trained = {
            "fog": trained_on(t, {"corruption:fog": 3.0}),
            "contrast": trained_on(t, {"corruption:contrast": 3.0}),
            "snow": trained_on(t, {"corruption:snow": 4.0}),
        }  # the factor's highest level
        trained = {k: [i for i in v if arch[i] == a] for k, v in trained.items()}
        for c1, c2 in (("fog", "contrast"), ("fog", "snow"), ("contrast", "snow")):
            g1 = R(trained[c1], c1) - R(M, c1)
            g2 = R(trained[c2], c2) - R(M, c2)
            want = max(0.0, 0.5 * ((R(trained[c2], c1) - R(M, c1)) / g1 + (R(trained[c1], c2) - R(M, c2)) / g2))
            pair = st[st["factor"].isin([f"{c1}~{c2}", f"{c2}~{c1}"])]  # pairs come in suite order
            got = stat(pair, analysis="overlap", arch=a, statistic="overlap")
            assert got["value"] == pytest.approx(want) and got["n"] == 2
    fog_snow = stat(st, analysis="overlap", arch="lenet5", factor="snow~fog", statistic="overlap")["value"]
    fog_contrast = stat(st, analysis="overlap", arch="lenet5", factor="fog~contrast", statistic="overlap")["value"]
    assert 0.2 < fog_snow < 1 and fog_contrast < 0.1  # the data make fog and snow overlap, contrast not
    assert (out / "plots" / "r__named__overlap__matrix.png").is_file()


# --- level suites, report -----------------------------------------------------------------


def test_severity_curves_only_for_level_suites(named):
    _, out, _ = named
    md = (out / "report.md").read_text()
    assert "Suites of named conditions (corruptions, pixel, two-factor-69) are not drawn against their level" in md
    assert list((out / "plots").glob("r__named__severity__*.png"))
    for name in ("corruption__lenet5__severity", "corruption__alexnet8__per_corruption", "mcv__conditions", "mcv"):
        assert (out / "plots" / f"r__named__{name}.png").is_file(), name


def test_without_suites_json_parameters_come_from_the_condition_names(named, tmp_path):
    root, out, st = named
    old = make_sweep(
        tmp_path / "old",
        "named",
        FACTORS,
        acc_named,
        archs=("lenet5", "alexnet8"),
        seeds=(0, 1),
        suites=SUITES,
        suites_json=False,
    )
    recipe = tmp_path / "p.yaml"
    recipe.write_text("name: p\nanalyses:\n  - type: corruption\n  - type: pixel_index\n    w: error\n")
    with pytest.raises(
        UserError, match=r"p\.yaml: analyses\[1\]\.image_pixels: suite 'pixel' of .* has no Pixel-index terms"
    ):
        analyze(old, tmp_path / "a", [str(recipe)])
    assert not (tmp_path / "a").exists()
    recipe.write_text(
        "name: p\nanalyses:\n  - type: corruption\n  - type: pixel_index\n    image_pixels: 784\n    w: error\n"
    )
    a = analyze(old, tmp_path / "a", [str(recipe)])
    assert (
        "no suites.json; conditions and their parameters are read from the condition names"
        in (a / "report.md").read_text()
    )
    new = table(out, "r__named__corruption__models.csv").set_index("trial_id")
    got = table(a, "p__named__corruption__models.csv").set_index("trial_id")
    assert got["aggregate"].to_numpy() == pytest.approx(new.loc[got.index, "aggregate"].to_numpy())
    _, m = frames(root)
    px = m[(m["suite"] == "pixel") & (m["condition"] != "clean")]
    pix = table(a, "p__named__pixel_index__models.csv").merge(
        px[["trial_id", "condition", "p", "r", "a", "accuracy"]], on=["trial_id", "condition"], suffixes=("", "_json")
    )
    assert pix["p"].to_numpy() == pytest.approx(pix["p_json"].to_numpy())
    assert pix["r"].to_numpy() == pytest.approx(
        pix["r_json"].to_numpy(), abs=5e-4
    )  # the name rounds r and a to 3 digits
    # r = 20/255 prints as 0.078: Pi from the names is off by that rounding (< 1 %)
    assert pix["Pi"].to_numpy() == pytest.approx(
        ((1 - pix["accuracy"]) / (pix["p_json"] * pix["r_json"] * pix["a_json"])).to_numpy(), rel=1e-2
    )
    assert set(pix["experiment"]) == {
        "count",
        "range10",
        "range40",
        "range70",
        "range100",
        "range127",
        "area-a0.797",
        "area-a0.460",
        "area-a0.184",
        "area-a0.046",
    }


def test_metrics_without_a_condition_column_are_read_as_one_condition_per_level(tmp_path):
    root = make_sweep(
        tmp_path / "r",
        "s",
        {"gaussian_l2": ([2.0, 4.0, 6.0], None)},
        lambda a, s, lv, su, level: 0.9 - 0.01 * level + 0.001 * lv["gaussian_l2"],
    )
    table_ = pq.read_table(root / "metrics.parquet")
    write_table(table_.to_pandas().drop(columns="condition"), str(root / "metrics.parquet"))
    (root / "suites.json").unlink()
    out = analyze(root)
    md = (out / "report.md").read_text()
    assert "no 'condition' column (an older results layout)" in md
    assert list((out / "plots").glob("*severity*.png"))


def test_recipe_asking_for_missing_named_suites_is_refused(tmp_path):
    root = make_sweep(tmp_path / "r", "s", {"corruption:fog": ([3.0], None)}, lambda *a: 0.8)
    recipe = tmp_path / "x.yaml"
    recipe.write_text("name: x\nanalyses:\n  - type: pixel_index\n")
    with pytest.raises(UserError, match=r"x\.yaml: analyses\[0\]\.suite: no pixel suite in"):
        analyze(root, tmp_path / "o", [str(recipe)])
    recipe.write_text("name: x\nanalyses:\n  - type: overlap\n")
    with pytest.raises(UserError, match=r"x\.yaml: analyses\[0\]\.suite: no corruptions suite in"):
        analyze(root, tmp_path / "o", [str(recipe)])
    assert not (tmp_path / "o").exists()


def test_overlap_needs_two_corruption_factors(tmp_path):
    root = make_sweep(
        tmp_path / "r",
        "s",
        {"corruption:fog": ([3.0], None)},
        acc_named,
        suites={"mnist-test": [0.0], "corruptions": {"type": "corruptions", "levels": [1.0]}},
    )
    recipe = tmp_path / "x.yaml"
    recipe.write_text("name: x\nanalyses:\n  - type: overlap\n")
    with pytest.raises(
        UserError, match=r"analyses\[0\]\.type: the overlapping score needs models trained with two or more corruptions"
    ):
        analyze(root, tmp_path / "o", [str(recipe)])
    st = pd.read_csv(analyze(root) / "tables" / "statistics.csv", keep_default_na=False, na_values=[""])
    assert "overlap" not in set(st["analysis"]) and "corruption" in set(st["analysis"])
    assert math.isfinite(stat(st, analysis="corruption", factor="corruption:fog=3", statistic="aggregate")["value"])


# --- issue 15, item 7: the clean reference of 002 and 001 --------------------------------


def test_a_clean_suite_that_is_not_clean_is_refused_with_the_recipe_key(named, tmp_path):
    root, _, _ = named
    recipe = tmp_path / "x.yaml"
    recipe.write_text("name: x\nanalyses:\n  - type: pixel_index\n    clean_suite: pixel\n")
    with pytest.raises(
        UserError, match=r"x\.yaml: analyses\[0\]\.clean_suite: suite 'pixel' of .* is not a clean suite"
    ):
        analyze(root, tmp_path / "o", [str(recipe)])
    recipe.write_text("name: x\nanalyses:\n  - type: overlap\n    clean_suite: corruptions\n")
    with pytest.raises(
        UserError, match=r"x\.yaml: analyses\[0\]\.clean_suite: suite 'corruptions' of .* is not a clean suite"
    ):
        analyze(root, tmp_path / "o", [str(recipe)])
    recipe.write_text("name: x\nanalyses:\n  - type: pixel_index\n    clean_suite: mnist-test\n    w: relative\n")
    analyze(root, tmp_path / "o", [str(recipe)])  # a clean suite is accepted


@pytest.mark.parametrize("w", ["relative", "drop"])
def test_w_relative_and_drop_use_the_pixel_suites_own_unchanged_images_without_a_clean_suite(tmp_path, w):
    root = make_sweep(
        tmp_path / "r",
        "px",
        {"few_pixel": ([4.0], None)},
        acc_named,
        seeds=(0,),
        suites={"pixel": {"type": "pixel", "levels": [4.0, 16.0]}},
    )
    recipe = tmp_path / "x.yaml"
    recipe.write_text(f"name: x\nanalyses:\n  - type: pixel_index\n    w: {w}\n")
    out = analyze(root, tmp_path / "o", [str(recipe)])
    t, m = frames(root)
    px = m[(m["suite"] == "pixel") & (m["condition"] != "clean")].copy()
    a0 = px["trial_id"].map(m[(m["suite"] == "pixel") & (m["condition"] == "clean")].set_index("trial_id")["accuracy"])
    drop = np.clip(a0 - px["accuracy"], 0, None)
    px["w"] = drop / a0 if w == "relative" else drop
    got = table(out, "x__px__pixel_index__models.csv").merge(
        px[["trial_id", "condition", "w"]], on=["trial_id", "condition"], suffixes=("", "_want")
    )
    assert len(got) == len(px) and got["w"].to_numpy() == pytest.approx(got["w_want"].to_numpy(), abs=1e-12)
    assert "condition clean of pixel (the same images)" in (out / "report.md").read_text()
