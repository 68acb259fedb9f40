"""The fault campaign's HTML timeline: one self-contained file (inline CSS and SVG, no
scripts, nothing fetched), drawn from the campaign's JSON. One time axis: the faults on
each host (bars from injection to healing), the writes acknowledged each second per
timeline (a promotion starts a new one), and the operator's and the automatic
promotions' moments."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

W, LEFT, RIGHT, LANE_H = 1100, 70, 20, 18
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
KIND_COLOURS = {"power": "#d62728", "power-two": "#a50f15", "isolate": "#9467bd",
                "freeze": "#17becf", "kill-postgres": "#ff7f0e", "kill-keepalived": "#bcbd22",
                "kill-repmgrd": "#8c564b", "kill-watcher": "#7f7f7f",
                "switchover": "#2ca02c", "failback": "#1f77b4"}


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _axis_end(report: Mapping[str, Any]) -> float:
    series = report.get("acks_per_second") or {}
    longest = max((len(v) for v in series.values()), default=0)
    healed = [float(f.get("healed") or f["applied"]) for f in report.get("applied") or []]
    return max([float(report.get("duration_s") or 0), float(longest), *healed, 1.0])


def chart(report: Mapping[str, Any]) -> str:
    """The SVG: fault lanes per host, then acknowledged writes per second per timeline."""
    end = _axis_end(report)
    width = W - LEFT - RIGHT

    def x(t: float) -> float:
        return LEFT + width * max(0.0, min(t, end)) / end

    applied: Sequence[Mapping[str, Any]] = report.get("applied") or []
    lanes = [*sorted({h for f in applied for h in f.get("hosts") or []}), "operator"]
    plot_top = 20 + LANE_H * len(lanes) + 20
    plot_h = 160
    height = plot_top + plot_h + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" '
             f'width="{W}" height="{height}" font-family="sans-serif" font-size="10">']
    for i, lane in enumerate(lanes):
        y = 20 + i * LANE_H
        parts.append(f'<text x="{LEFT - 6}" y="{y + 12}" text-anchor="end">{_esc(lane)}</text>'
                     f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y + LANE_H - 1}" '
                     f'y2="{y + LANE_H - 1}" stroke="#eee"/>')
    for f in applied:
        kind = str(f["kind"])
        colour = KIND_COLOURS.get(kind, "#555")
        start = float(f["applied"])
        stop = float(f.get("healed") or start)
        for host in f.get("hosts") or ["operator"]:
            y = 20 + lanes.index(host) * LANE_H + 2
            w = max(x(stop) - x(start), 2.0)
            parts.append(f'<rect x="{x(start):.1f}" y="{y}" width="{w:.1f}" '
                         f'height="{LANE_H - 5}" fill="{colour}" opacity="0.8">'
                         f'<title>{_esc(kind)} on {_esc(host)}: {start:.1f}-{stop:.1f} s, '
                         f'outage {f.get("outage_s", 0)} s</title></rect>')
    for e in report.get("events") or []:
        if e.get("kind") == "failback":
            y = 20 + lanes.index("operator") * LANE_H + 2
            parts.append(f'<rect x="{x(float(e["at"])):.1f}" y="{y}" width="3" '
                         f'height="{LANE_H - 5}" fill="{KIND_COLOURS["failback"]}">'
                         f'<title>{_esc(e.get("what"))}</title></rect>')
    series: Mapping[str, Sequence[int]] = report.get("acks_per_second") or {}
    peak = max((sum(col) for col in zip(*series.values(), strict=False)), default=1) or 1
    base = [0.0] * max((len(v) for v in series.values()), default=0)
    for n, (timeline, counts) in enumerate(sorted(series.items(), key=lambda kv: kv[0])):
        colour = COLOURS[n % len(COLOURS)]
        for sec, count in enumerate(counts):
            if not count:
                continue
            h = plot_h * count / peak
            top = plot_top + plot_h - plot_h * base[sec] / peak - h
            parts.append(f'<rect x="{x(sec):.1f}" y="{top:.1f}" '
                         f'width="{max(x(sec + 1) - x(sec), 0.6):.1f}" height="{h:.1f}" '
                         f'fill="{colour}"/>')
            base[sec] += count
        parts.append(f'<text x="{W - RIGHT}" y="{plot_top + 12 + 12 * n}" text-anchor="end" '
                     f'fill="{colour}">timeline {_esc(timeline)}</text>')
    for c in report.get("consents") or []:
        cx = x(float(c["at"]))
        parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{plot_top}" '
                     f'y2="{plot_top + plot_h}" stroke="#000" stroke-dasharray="3,2">'
                     f'<title>{_esc(c.get("who"))}: window {c.get("window_s")} s</title></line>')
    axis_y = plot_top + plot_h
    parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{axis_y}" y2="{axis_y}" '
                 'stroke="#000"/>')
    step = max(10, int(end / 10 // 10 * 10) or 10)
    for t in range(0, int(end) + 1, step):
        parts.append(f'<text x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle">{t} s</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{plot_top + 10}" text-anchor="end">writes/s</text>'
                 f'<text x="{LEFT - 6}" y="{plot_top + 22}" text-anchor="end">{peak}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _rows(pairs: Sequence[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in pairs)


def render(report: Mapping[str, Any]) -> str:
    """The whole page."""
    verdict = "PASSED" if report.get("ok") else "FAILED"
    outage = report.get("outage_s_by_kind") or {}
    kinds = "".join(
        f"<tr><td>{_esc(k)}</td><td>{n}</td><td>{outage.get(k, {}).get('median', '')}</td>"
        f"<td>{outage.get(k, {}).get('max', '')}</td></tr>"
        for k, n in (report.get("faults_by_kind") or {}).items())
    events = "".join(f"<tr><td>{float(e['at']):.1f}</td><td>{_esc(e.get('what'))}</td></tr>"
                     for e in report.get("events") or [])
    problems = "".join(f"<li>{_esc(p)}</li>" for p in report.get("problems") or [])
    if not report.get("healthy_at_end"):
        problems += "<li>the cluster was not healthy 300 s after the last fault healed</li>"
    summary = _rows([
        ("verdict", verdict), ("seed", report.get("seed")),
        ("duration", f"{report.get('duration_s')} s"),
        ("writes attempted / acknowledged",
         f"{report.get('attempted')} / {report.get('acknowledged')}"),
        ("lost without consent", report.get("lost")),
        ("lost with consent", report.get("lost_with_consent")),
        ("unexpected", report.get("unexpected")), ("recovered", report.get("recovered")),
        ("overlapping acknowledgements", f"{report.get('overlap_s')} s"),
        ("final primary", report.get("final_primary")),
    ])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>drctl fault campaign, seed {_esc(report.get('seed'))}: {verdict}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 2px 8px; text-align: left; font-size: 13px; }}
.verdict {{ font-weight: bold; color: {'#2ca02c' if report.get('ok') else '#d62728'}; }}
</style></head><body>
<h1>Fault campaign <span class="verdict">{verdict}</span></h1>
<p>Started {_esc(report.get('started'))}; reproduce the schedule with
<code>make campaign DURATION={_esc(report.get('duration_s'))}
SEED={_esc(report.get('seed'))}</code>.</p>
<ul>{problems}</ul>
<table>{summary}</table>
{chart(report)}
<h2>Faults by kind</h2>
<table><tr><th>kind</th><th>count</th><th>outage median (s)</th><th>outage max (s)</th></tr>
{kinds}</table>
<h2>What happened</h2>
<table><tr><th>at (s)</th><th>what</th></tr>{events}</table>
</body></html>
"""
