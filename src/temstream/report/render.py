"""Writing a :class:`~temstream.report.Report`: one self-contained HTML file, or a PDF."""

from __future__ import annotations

import base64
import html
from pathlib import Path

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; max-width: 980px; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em;
border-bottom: 1px solid #ddd; } table { border-collapse: collapse; margin: 0.5em 0; }
td, th { padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }
th { font-weight: 600; color: #555; } img { max-width: 100%; } .cap { color: #555;
font-size: 0.92em; } pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }
.num td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
"""


def _kv(rows) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


def _timings(df) -> str:
    if df is None or df.empty:
        return ""
    head = "<tr><th>stage</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    rows = "".join("<tr><td>" + html.escape(str(i)) + "</td>" + "".join(
        f"<td>{v:.2f}</td>" for v in r) + "</tr>" for i, r in zip(df.index, df.to_numpy()))
    return f"<table class='num'>{head}</tr>{rows}</table>"


def to_html(report) -> str:
    """The report as one HTML page with its figures embedded as PNG (no other file)."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>temstream report: "
             f"{html.escape(report.path.name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>temstream report: {html.escape(report.path.name)}</h1>",
             "<h2>What was recorded</h2>", _kv(report.facts),
             "<h2>Settings</h2>", _kv(report.settings),
             "<details><summary>the whole configuration (TOML)</summary><pre>"
             f"{html.escape(report.config_toml)}</pre></details>",
             "<h2>Frame accounting</h2>", _kv(report.accounting), _timings(report.timings)]
    if report.other_columns:
        parts += ["<p class='cap'>Further <code>/frames_info</code> columns:</p>",
                  _kv(report.other_columns)]
    parts += ["<h2>Results</h2>", _kv(report.results)]
    for p in report.panels:
        data = base64.b64encode(p.png()).decode()
        parts += [f"<h2>{html.escape(p.title)}</h2>",
                  f"<img alt='{html.escape(p.title)}' src='data:image/png;base64,{data}'>",
                  f"<p class='cap'>{html.escape(p.caption)}</p>"]
    parts.append("<p class='cap'>Made by <code>temstream report</code>.</p></body></html>")
    return "\n".join(parts)


def to_pdf(report, out: str | Path) -> None:
    """The report as a PDF: a page of tables, then one page per figure."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    lines = [f"temstream report: {report.path.name}", ""]
    for title, rows in (("What was recorded", report.facts), ("Settings", report.settings),
                        ("Frame accounting", report.accounting),
                        ("Further /frames_info columns", report.other_columns),
                        ("Results", report.results)):
        if rows:
            lines += [title] + [f"  {k:<26} {v}" for k, v in rows] + [""]
    with PdfPages(out) as pdf:
        for start in range(0, len(lines), 60):
            page = Figure(figsize=(8.27, 11.69))
            page.text(0.06, 0.96, "\n".join(lines[start:start + 60]), va="top", family="monospace",
                      fontsize=7.5)
            pdf.savefig(page)
        for p in report.panels:
            p.figure.suptitle(p.title, fontsize=10)
            pdf.savefig(p.figure)
