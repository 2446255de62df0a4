"""``robust-ray analyze --summary``: the reproductions page is counted from each folder's
comparison.csv and findings.yaml, never copied from prose."""

from __future__ import annotations

import textwrap

import pandas as pd

from robust_ray.cli import main


def make(tmp_path):
    root = tmp_path / "reproductions"
    ref = tmp_path / "reference"
    ref.mkdir()
    pd.DataFrame({"table": ["X-T1"] * 3 + ["X-T2"] * 2, "statistic": ["r", "p", "r", "r", "r"],
                  "value": [0.5, 0.01, -0.2, 0.1, 0.2]}).to_csv(ref / "x-table1.csv", index=False)  # fmt: skip
    (ref / "y-table9.csv").write_text("# a CIFAR table\ntable,statistic,value\nY-T9,r,0.3\n")
    run = root / "x-run"
    run.mkdir(parents=True)
    pd.DataFrame(
        {
            "table": ["X-T1", "X-T1", "X-T1"],
            "statistic": ["r", "p", "r"],
            "sign": ["same", None, "differs"],
            "band": ["same (low)", None, "published weak or none, ours moderate"],
            "agreement": ["same band", "same verdict", "differs"],
        }
    ).to_csv(run / "comparison.csv", index=False)
    (run / "findings.yaml").write_text(
        textwrap.dedent("""
        paper: X (Someone 2020)
        tables: [X-T1]
        ran: LeNet-5, 3 seeds
        wall_s: 1200
        findings:
          - {finding: noise helps, verdict: partly, numbers: "r = 0.4 [0.1, 0.6]"}
    """)
    )
    (root / "not-run.yaml").write_text("Y-T9: {why: CIFAR-10 needs a download, gpu_cost: about 2 GPU-hours}\n")
    return root


def test_the_summary_counts_agreement_from_the_csvs(tmp_path, capsys):
    root = make(tmp_path)
    assert main(["analyze", "--summary", str(root)]) == 0
    page = (root / "README.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| X-T1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3:9] == ["3", "3", "1 of 2", "1 of 2", "1 of 1", "20 min"], cells
    assert "| X (Someone 2020) | noise helps | **partly** | r = 0.4 [0.1, 0.6] |" in page
    assert (
        "| X-T2 | 2 | not run yet | – |" in page
        and "| Y-T9 | 1 | CIFAR-10 needs a download | about 2 GPU-hours |" in page
    )


def test_a_bad_verdict_is_refused_naming_the_file(tmp_path, capsys):
    root = make(tmp_path)
    f = root / "x-run" / "findings.yaml"
    f.write_text(f.read_text().replace("partly", "maybe"))
    assert main(["analyze", "--summary", str(root)]) == 2
    assert f"{f}: findings[0].verdict must be one of holds, partly, does not hold" in capsys.readouterr().err


def test_compared_counts_only_numbers_reproduced_and_a_bar_in_a_finding_keeps_the_table(tmp_path):
    root = make(tmp_path)
    cmp = pd.read_csv(root / "x-run" / "comparison.csv")
    cmp["reproduced"] = [0.4, 0.02, None]  # the third published number is not in these results
    cmp["strength"] = cmp.pop("band")  # the column's name since issue 15
    cmp.to_csv(root / "x-run" / "comparison.csv", index=False)
    f = root / "x-run" / "findings.yaml"
    f.write_text(f.read_text().replace("noise helps", "every Pearson |r| < 0.5"))
    assert main(["analyze", "--summary", str(root)]) == 0
    page = (root / "README.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| X-T1 |"))
    # the number not reproduced counts neither as compared nor in the agreement columns
    assert [c.strip() for c in row.strip("|").split("|")][3:8] == ["3", "2", "1 of 1", "1 of 1", "1 of 1"]
    assert "| X (Someone 2020) | every Pearson \\|r\\| < 0.5 | **partly** |" in page
