"""The report's building blocks (sections of text, tables, figures) and their rendering
as Markdown and as one self-contained HTML file (figures embedded as data URIs), the HTML
from a Jinja2 template (``templates/report.html.j2``), both with a table of contents and
the banners (smoke run, partial results) first.

Tables are written in full to ``tables/NAME.csv``; the report shows at most
``MAX_ROWS`` rows of each and says where the rest is.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from . import plots

MAX_ROWS = 60


@dataclass
class Table:
    title: str
    csv: str  # path relative to the report folder
    df: pd.DataFrame
    note: str = ""


@dataclass
class Plot:
    title: str
    png: str  # path relative to the report folder


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    items: list[Table | Plot] = field(default_factory=list)
    level: int = 2

    @property
    def empty(self) -> bool:
        """No table and no figure: a section that has no data to show."""
        return not self.items

    def add(self, item: Table | Plot | None) -> None:
        if item is not None:
            self.items.append(item)


@dataclass
class Banner:
    text: str  # the little Markdown of the sections
    kind: str = "warning"


class Sink:
    """Writes tables (CSV) and figures (PNG) under ``root`` as they are made, with unique
    file names, and hands back the blocks that reference them."""

    def __init__(self, root: Path, plots: bool = True):
        self.root, self.plots = root, plots
        (root / "tables").mkdir(parents=True)
        (root / "plots").mkdir()
        self.used: set[str] = set()

    def _name(self, stem: str, ext: str) -> str:
        stem = re.sub(r"[^A-Za-z0-9_.=-]+", "_", stem).strip("_") or "x"
        name, i = stem, 2
        while f"{name}.{ext}" in self.used:
            name, i = f"{stem}_{i}", i + 1
        self.used.add(f"{name}.{ext}")
        return f"{name}.{ext}"

    def table(self, stem: str, df: pd.DataFrame, title: str, note: str = "") -> Table:
        rel = f"tables/{self._name(stem, 'csv')}"
        write_csv(df, self.root / rel)
        return Table(title, rel, df, note)

    def figure(self, stem: str, make, title: str) -> Plot | None:
        """Draw ``make()`` and save it; nothing (and no drawing) when plots are off."""
        if not self.plots:
            return None
        rel = f"plots/{self._name(stem, 'png')}"
        plots.save(make(), self.root / rel)
        return Plot(title, rel)


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """CSV through pyarrow (several times faster than pandas on 100,000-row tables)."""
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    pacsv.write_csv(table, path)


def fmt(value, column: str = "") -> str:
    """Numbers as a paper prints them: p-values to 3 significant digits (scientific when
    small), counts as integers, others to 4 significant digits; NaN as 'n/a'."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"):
        return str(int(value))
    if isinstance(value, float):
        if column == "p" or column.startswith("p ") or column.startswith("p(") or column.endswith(" p"):
            return f"{value:.3g}" if value == 0 or abs(value) >= 1e-3 else f"{value:.2e}"
        if (
            value == int(value)
            and abs(value) < 1e6
            and column in {"n", "level", "df", "rank", "levels", "n excluded", "test sets"}
        ):
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def ci_text(lo: float, hi: float) -> str:
    """A 95 % interval as "[lo, hi]" (3 significant digits); "n/a" where there is none."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "n/a"
    return f"[{lo:.3g}, {hi:.3g}]"


def significant(p: float, alpha: float) -> str:
    """The verdict of a p at ``alpha``: "yes", "no", or "n/a" (no p)."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return "yes" if p < alpha else "no"


def _rows(df: pd.DataFrame) -> list[list[str]]:
    cols = [str(c) for c in df.columns]
    return [[fmt(v, c) for v, c in zip(row, cols)] for row in df.head(MAX_ROWS).itertuples(index=False, name=None)]


def _more(t: Table) -> str:
    extra = len(t.df) - MAX_ROWS
    return f" ({extra} more rows in [{t.csv}]({t.csv}))" if extra > 0 else ""


def anchors(sections: list[Section]) -> list[str]:
    """A unique HTML id per section, from its title."""
    out, seen = [], set()
    for s in sections:
        a = re.sub(r"[^a-z0-9]+", "-", s.title.lower()).strip("-") or "section"
        base, i = a, 2
        while a in seen:
            a, i = f"{base}-{i}", i + 1
        seen.add(a)
        out.append(a)
    return out


def markdown(title: str, sections: list[Section], banners: list[Banner] | None = None) -> str:
    out = [f"# {title}", ""]
    for b in banners or []:
        out += [f"> **{b.text}**", ""]
    out += ["Contents:", ""]
    out += [f"{'  ' * max(0, s.level - 2)}- [{s.title}](#{a})" for s, a in zip(sections, anchors(sections))] + [""]
    for s, a in zip(sections, anchors(sections)):
        out += [f'<a id="{a}"></a>', "", "#" * s.level + " " + s.title, ""]
        out += [p + "\n" for p in s.text]
        for item in s.items:
            if isinstance(item, Plot):
                out += [f"![{item.title}]({item.png})", "", f"*{item.title}*", ""]
                continue
            out += [f"**{item.title}** ([CSV]({item.csv}))" + _more(item), ""]
            cols = [str(c).replace("|", "\\|") for c in item.df.columns]
            out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            out += ["| " + " | ".join(v.replace("|", "\\|") for v in r) + " |" for r in _rows(item.df)]
            out += [""] + ([f"*{item.note}*", ""] if item.note else [])
    return "\n".join(out)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0}
img{max-width:100%;border:1px solid #eee}figure{margin:1em 0}figcaption{font-style:italic;font-size:13px}
code{background:#f4f4f4;padding:0 3px}.note{font-size:13px;color:#555}
.banner{padding:.6em 1em;margin:.6em 0;border-left:5px solid #D55E00;background:#fff3e6;font-weight:600}
nav#contents ul{list-style:none;padding-left:0}nav#contents li.toc3{padding-left:1.5em}nav#contents li.toc4{padding-left:3em}
"""


def _inline(text: str) -> str:
    """The little Markdown the sections use: `code`, **bold**, [link](url)."""
    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"\*([^*]+)\*", r"<i>\1</i>", t)
    t = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', t)
    return t


def html_report(title: str, sections: list[Section], root: Path, banners: list[Banner] | None = None) -> str:
    """One self-contained HTML file from ``templates/report.html.j2`` (autoescaped; the
    sections' little Markdown is turned into markup here, before it reaches the template)."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("robust_ray.analysis", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    views = []
    for s, a in zip(sections, anchors(sections)):
        paragraphs = [
            {"bullets": [Markup(_inline(li[2:])) for li in p.split("\n")]}
            if p.startswith("- ")
            else {"html": Markup(_inline(p))}
            for p in s.text
        ]
        blocks = []
        for item in s.items:
            if isinstance(item, Plot):
                blocks.append(
                    {
                        "png": item.png,
                        "title": item.title,
                        "data": base64.b64encode((root / item.png).read_bytes()).decode(),
                    }
                )
            else:
                blocks.append(
                    {
                        "csv": item.csv,
                        "title": item.title,
                        "columns": [str(c) for c in item.df.columns],
                        "rows": _rows(item.df),
                        "more": max(0, len(item.df) - MAX_ROWS),
                        "note": Markup(_inline(item.note)) if item.note else "",
                    }
                )
        views.append({"title": s.title, "level": s.level, "anchor": a, "paragraphs": paragraphs, "blocks": blocks})
    ban = [{"kind": b.kind, "html": Markup(_inline(b.text))} for b in banners or []]
    return env.get_template("report.html.j2").render(title=title, css=Markup(CSS), sections=views, banners=ban)
