"""The report's files: Markdown and CSV tables, and one self-contained HTML page holding everything.

``report.md``: what was compared, the means per row (best in bold) and the per-image table.
``scores.csv``: one line per (set, image, row) with every metric and the seconds.
``means.csv``: one line per (set, row).
``report.html``: the same tables and every image's crop grid, embedded as ``data:`` URIs, so
the one file can be mailed or attached to an issue. Each file is written to a temporary name
and renamed, so an interrupted run never leaves a complete-looking report.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
from collections.abc import Mapping
from pathlib import Path

from realesrgan_ext.evaluation.results import SECONDS, EvaluationReport

SET_TITLES = {"reference": "Full-reference (against the HR photos)", "real": "No-reference (real photos, no HR)"}


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _seconds(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.3f}"


def means_table(report: EvaluationReport, kind: str) -> list[list[str]]:
    """Header and rows of the means table; each best mean is marked with ``**``."""
    metrics = report.metrics(kind)
    means = report.means(kind)
    best = {m.key: report.best(m.key, kind) for m in metrics}
    header = ["model", *(f"{m.title} {m.arrow}" for m in metrics), "s / image", "images"]
    rows = []
    for row in report.rows:
        cells = [row]
        for m in metrics:
            text = m.format(means[row][m.key])
            cells.append(f"**{text}**" if text and best[m.key] == row else text)
        rows.append([*cells, _seconds(means[row][SECONDS]), str(int(means[row]["images"]))])
    return [header, *rows]


def per_image_table(report: EvaluationReport, kind: str) -> list[list[str]]:
    metrics = report.metrics(kind)
    header = ["image", "model", *(f"{m.title} {m.arrow}" for m in metrics), "seconds"]
    rows = [[s.image, s.row, *(m.format(s.values[m.key]) for m in metrics), _seconds(s.seconds)]
            for s in report.scores if s.kind == kind]
    return [header, *rows]


def _markdown_table(table: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    header, *rows = table
    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in rows)])


def kinds(report: EvaluationReport) -> list[str]:
    return [kind for kind in SET_TITLES if kind in report.sets]


def means_markdown(report: EvaluationReport) -> str:
    """The means tables alone (what a script prints)."""
    return "\n\n".join(f"{SET_TITLES[k]}: {report.sets[k]}\n\n{_markdown_table(means_table(report, k))}"
                       for k in kinds(report))


def markdown(report: EvaluationReport, grids: Mapping[str, str]) -> str:
    """The whole report as Markdown; ``grids`` maps a crop-grid title to its path relative to the report."""
    parts = [f"# Evaluation x{report.scale}", "", "Rows:", ""]
    parts += [f"- **{row}**: {report.descriptions[row]}" for row in report.rows]
    for kind in kinds(report):
        parts += ["", f"## {SET_TITLES[kind]}", "", report.sets[kind], "", "### Means", "",
                  _markdown_table(means_table(report, kind)), "", "### Per image", "",
                  _markdown_table(per_image_table(report, kind))]
    if grids:
        parts += ["", "## Crops", "", "Same region in every panel: where the reference has the most detail.", ""]
        parts += [f"![{title}]({path})" for title, path in grids.items()]
    parts += ["", "## Not scored", ""]
    parts += [f"- `{path}`: {reason}" for path, reason in report.problems] or ["Every image was scored."]
    return "\n".join(parts) + "\n"


def scores_csv(report: EvaluationReport) -> str:
    keys = [m.key for kind in kinds(report) for m in report.metrics(kind)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["set", "image", "model", *keys, SECONDS])
    for s in report.scores:
        writer.writerow([s.kind, s.image, s.row, *(_csv_value(s.values.get(k)) for k in keys), f"{s.seconds:.4f}"])
    return out.getvalue()


def means_csv(report: EvaluationReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = [m.key for kind in kinds(report) for m in report.metrics(kind)]
    writer.writerow(["set", "model", *keys, SECONDS, "images"])
    for kind in kinds(report):
        for row, means in report.means(kind).items():
            writer.writerow([kind, row, *(_csv_value(means.get(k)) for k in keys), _csv_value(means[SECONDS]),
                             int(means["images"])])
    return out.getvalue()


def _csv_value(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else repr(float(value))


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
.label { text-align: left; }
th { background: #eee; }
img.grid { image-rendering: pixelated; display: block; margin: 0.3em 0 1.2em; max-width: 100%; }
.problems li { color: #a00; }
"""


def _html_table(table: list[list[str]], css_class: str, labels: int) -> str:
    """``table`` as HTML; the first ``labels`` columns are names (left-aligned), the rest numbers."""
    def cell(tag: str, text: str, column: int) -> str:
        bold = text.startswith("**") and text.endswith("**") and len(text) > 4
        text = html.escape(text.strip("*") if bold else text)
        align = " class='label'" if column < labels else ""
        return f"<{tag}{align}>{'<b>' + text + '</b>' if bold else text}</{tag}>"

    def row(tag: str, cells: list[str]) -> str:
        return "<tr>" + "".join(cell(tag, text, i) for i, text in enumerate(cells)) + "</tr>"

    header, *rows = table
    head = row("th", header)
    body = "".join(row("td", r) for r in rows)
    return f'<table class="{css_class}"><thead>{head}</thead><tbody>{body}</tbody></table>'


def html_page(report: EvaluationReport, grids: Mapping[str, bytes], total_grids: int | None = None) -> str:
    """One self-contained page: rows, means, per-image scores, crop grids (PNG ``data:`` URIs), problems.

    ``total_grids``: how many images have a grid in ``crops/`` (the page embeds only ``grids``)."""
    esc = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Evaluation x{report.scale}</title>",
             f"<style>{_STYLE}</style></head><body>", f"<h1>Evaluation x{report.scale}</h1>", "<ul>"]
    parts += [f"<li><b>{esc(row)}</b>: {esc(report.descriptions[row])}</li>" for row in report.rows]
    parts.append("</ul>")
    for kind in kinds(report):
        parts += [f"<h2>{esc(SET_TITLES[kind])}</h2><p>{esc(report.sets[kind])}</p>", "<h3>Means</h3>",
                  _html_table(means_table(report, kind), f"means {kind}", 1), "<h3>Per image</h3>",
                  _html_table(per_image_table(report, kind), f"per-image {kind}", 2)]
    if grids:
        parts.append("<h2>Crops</h2><p>Same region in every panel: where the reference has the most detail.</p>")
        if total_grids and total_grids > len(grids):
            parts.append(f"<p>The first {len(grids)} images; all {total_grids} are in the crops/ folder.</p>")
        for title, png in grids.items():
            uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            parts.append(f"<h3>{esc(title)}</h3><img class='grid' alt='{esc(title)}' src='{uri}'>")
    parts.append("<h2>Not scored</h2>")
    if report.problems:
        parts.append("<ul class='problems'>" + "".join(f"<li><code>{esc(p)}</code>: {esc(r)}</li>"
                                                        for p, r in report.problems) + "</ul>")
    else:
        parts.append("<p>Every image was scored.</p>")
    return "".join(parts) + "</body></html>\n"
