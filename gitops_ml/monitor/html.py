"""A MonitorReport as one self-contained HTML page: tables, and a histogram per drifted feature
(reference against production) drawn by matplotlib as inline SVG.

No script, no stylesheet or font from elsewhere: the page makes no request, so it can be attached
to an issue, mailed, or opened offline. matplotlib is imported only here (the monitor extra).
"""

from __future__ import annotations

import html
import io
import re

from gitops_ml.monitor.drift import FeatureDrift
from gitops_ml.monitor.formats import window_text
from gitops_ml.monitor.report import MonitorReport, Status

REFERENCE_COLOR = "#7f8c9b"
PRODUCTION_COLOR = "#d9534f"
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1f2328}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
.status{display:inline-block;padding:.15rem .6rem;border-radius:1rem;font-weight:600;color:#fff}
.ok{background:#1a7f37}.crossed{background:#cf222e}.nodata{background:#6e7781}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}tr.drifted td{background:#fff1f0}
.meta{color:#57606a}.plots{display:flex;flex-wrap:wrap;gap:1rem}.plot{border:1px solid #d0d7de;border-radius:6px;padding:.4rem}
.plot svg{width:30rem;height:auto;max-width:100%}
"""


def to_html(report: MonitorReport) -> str:
    e = html.escape
    css = {Status.OK: "ok", Status.CROSSED: "crossed", Status.NO_DATA: "nodata"}[report.status]
    r = report.records
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        # the page needs nothing from anywhere: say so to the browser as well
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>gitops-ml monitor: {e(report.model)} {e(report.version)} in {e(report.environment)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{e(report.model)} {e(report.version)} in {e(report.environment)} <span class=\"status {css}\">{e(report.status.value)}</span></h1>",
        f"<p>{e(report.headline)}</p>",
        f"<p class=\"meta\">Window {e(window_text(report))} · {r.total} record(s) of this version: {r.scored} scored, {r.refused} refused, "
        f"{r.errors} server error(s) · source <code>{e(report.source)}</code></p>",
    ]
    if report.checks:
        parts += ["<h2>Checks</h2>", "<table><tr><th>check</th><th>measured</th><th>threshold</th><th></th></tr>"]
        for c in report.checks:
            parts.append(
                f"<tr class=\"{'drifted' if c.crossed else ''}\"><td>{e(c.name)}</td><td>{e(c.summary)}</td>"
                f"<td class=\"num\">{c.threshold:g}</td><td>{'crossed' if c.crossed else 'ok'}</td></tr>"
            )
        parts.append("</table>")
    plotted = [f for f in (*report.features, *report.predictions) if f.drifted]
    if plotted:
        parts += ["<h2>Drifted</h2>", '<div class="plots">']
        parts += [f'<div class="plot">{histogram_svg(f)}</div>' for f in plotted]
        parts.append("</div>")
    for title, group in (("Features", report.features), ("Predictions", report.predictions)):
        if group:
            parts += [f"<h2>{title}</h2>", _table(group)]
    if report.latency is not None:
        lat = report.latency
        parts.append(f"<p>Latency p50 {lat.p50 * 1000:.1f} ms · p95 {lat.p95 * 1000:.1f} ms · p99 {lat.p99 * 1000:.1f} ms</p>")
    if report.notes:
        parts += ["<h2>Notes</h2>", "<ul>", *(f"<li>{e(n)}</li>" for n in report.notes), "</ul>"]
    t = report.thresholds
    parts.append(
        f"<p class=\"meta\">A feature drifts when PSI ≥ {t.drift.psi:g} against the version's reference profile and the test "
        f"(KS for numbers, chi-square for categories) gives p &lt; {t.drift.p_value:g}. Generated {e(report.generated.isoformat(timespec='seconds'))} by gitops-ml.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _table(group: tuple[FeatureDrift, ...]) -> str:
    e = html.escape
    rows = [
        "<table><tr><th>name</th><th>path</th><th>type</th><th>PSI</th><th>test</th><th>statistic</th><th>p-value</th>"
        "<th>reference n</th><th>production n</th><th></th></tr>"
    ]
    for f in sorted(group, key=lambda f: (not f.drifted, -f.psi, f.name)):
        rows.append(
            f"<tr class=\"{'drifted' if f.drifted else ''}\"><td>{e(f.name)}</td><td><code>{e(f.path)}</code></td><td>{e(f.kind)}</td>"
            f"<td class=\"num\">{f.psi:.3f}</td><td>{e(f.test or '–')}</td><td class=\"num\">{f.statistic:.3g}</td>"
            f"<td class=\"num\">{f.p_value:.2g}</td><td class=\"num\">{f.reference_count}</td><td class=\"num\">{f.production_count}</td>"
            f"<td>{'drifted' if f.drifted else 'ok'}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def histogram_svg(feature: FeatureDrift) -> str:
    """Shares per bin (or category), reference and production side by side, as an inline <svg>."""
    import matplotlib  # noqa: PLC0415 - the monitor extra
    from matplotlib.figure import Figure  # noqa: PLC0415 - no pyplot: no global figure state, no GUI backend

    d = feature.distribution
    with matplotlib.rc_context({"svg.hashsalt": "gitops-ml", "svg.fonttype": "none", "font.family": "sans-serif", "font.size": 9}):
        figure = Figure(figsize=(6.0, 3.2))
        axes = figure.add_subplot()
        positions = range(len(d.labels))
        width = 0.4
        axes.bar([p - width / 2 for p in positions], [v * 100 for v in d.reference], width, label="reference", color=REFERENCE_COLOR)
        axes.bar([p + width / 2 for p in positions], [v * 100 for v in d.production], width, label="production", color=PRODUCTION_COLOR)
        axes.set_xticks(list(positions), list(d.labels), rotation=30 if len(d.labels) > 4 else 0, ha="right" if len(d.labels) > 4 else "center")
        axes.set_ylabel("share of values (%)")
        axes.set_title(f"{feature.name}: PSI {feature.psi:.2f}, {feature.test or 'no test'} p={feature.p_value:.2g}")
        axes.legend(frameon=False)
        axes.spines[["top", "right"]].set_visible(False)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    # inline in HTML: drop the XML declaration, the DOCTYPE (it names an external DTD) and the RDF metadata
    svg = re.sub(r"^.*?(<svg\b)", r"\1", svg, count=1, flags=re.S)
    return re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
