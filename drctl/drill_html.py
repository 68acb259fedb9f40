"""The drill's HTML report: one self-contained file (inline CSS and SVG, no scripts, no
fonts or anything else fetched), readable offline and printable."""

from __future__ import annotations

import html
from typing import Any

W, H, LEFT, TOP, PLOT_H = 1100, 330, 56, 30, 200


LABEL_FONT, LANE_H, LANES = 10, 13, 12
CHAR_W = 6.0  # an upper bound of a character's width at LABEL_FONT in a sans-serif font


def pooled_line(pooled: dict[str, Any] | None) -> str:
    """The drill's writer through a pooler, in one line (or why there was none)."""
    if not pooled:
        return "not measured"
    if "acknowledged" not in pooled:
        return f"not measured ({pooled.get('error') or 'no pooler'})"
    return (f"{pooled['acknowledged']} / {pooled['failed_attempts']} / "
            f"{pooled['max_wait_s']} s, {pooled['lost']} lost (via {pooled['host']})")


def rebuild_line(rebuilt: dict[str, Any] | None) -> str | None:
    """The cloud-restore drill's rebuild in one line: where, from what, its recovery
    point and time, the users found there (None for the other scenarios)."""
    if not rebuilt:
        return None
    behind = rebuilt.get("rpo_behind_newest_ack_s")
    took = rebuilt.get("recovery_s")
    replayed = rebuilt.get("last_replayed_commit") or \
        "none after the backup (the recovery point is the backup's end)"
    return (f"{rebuilt['on']} from repo{rebuilt['repo']} ({rebuilt['repo_name']}), timeline "
            f"{rebuilt.get('timeline')}: last commit replayed {replayed}"
            + (f", {behind} s before the newest write acknowledged before the cut"
               if behind is not None else "")
            + (f"; taking writes {took} s after the power cut (the rebuild itself "
               f"{rebuilt.get('rebuild_rto_s')} s)" if took is not None else
               "; it did not take writes")
            + f"; users present {rebuilt['users_present']} of {rebuilt['users_registered']}"
              " registered")


def label_width(text: str) -> float:
    return len(text) * CHAR_W


def layout_labels(marks: list[tuple[float, str]]) -> list[tuple[float, int, str]]:
    """Where each step's label goes: (x, y, text), no two overlapping. Each label sits
    right of its line in the first lane where it fits; a label that fits nowhere is
    shown by its step number (the Steps table lists them), in the lane it fits best."""
    ends = [float("-inf")] * LANES  # right edge of the last label in each lane
    out = []
    right_edge = W - 4
    for number, (mx, text) in enumerate(marks, 1):
        lx = mx + 3
        if lx + label_width(text) > right_edge:  # near the end: left of its line
            lx = max(LEFT, mx - 3 - label_width(text))
        lane = next((i for i, end in enumerate(ends) if end + 4 <= lx), None)
        if lane is None:  # every lane is taken here: the number, where there is room
            text = f"{number}"
            lane = min(range(LANES), key=lambda i: ends[i])
            lx = min(max(ends[lane] + 4, mx + 3), right_edge - label_width(text))
        ends[lane] = lx + label_width(text)
        out.append((lx, TOP + 12 + lane * LANE_H, text))
    return out


def _chart(report: dict[str, Any]) -> str:
    s = report["series"]
    n = len(s["writes"])
    bin_s = s["bin_s"]
    total = n * bin_s
    width = W - LEFT - 20
    peak = max(max(s["writes"], default=0), 1)
    x = lambda t: LEFT + width * (t / total if total else 0)  # noqa: E731
    bar_w = max(width / max(n, 1), 0.5)
    parts = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" '
             f'role="img" aria-label="acknowledged writes per 100 ms">',
             f'<rect x="{LEFT}" y="{TOP}" width="{width}" height="{PLOT_H}" fill="#fafafa" '
             'stroke="#ccc"/>']
    for i, v in enumerate(s["writes"]):
        if v:
            h = PLOT_H * v / peak
            parts.append(f'<rect class="w" x="{LEFT + i * bar_w:.1f}" y="{TOP + PLOT_H - h:.1f}" '
                         f'width="{bar_w:.2f}" height="{h:.1f}" fill="#2b7bb9"/>')
    for i, v in enumerate(s["app_errors"]):
        if v:
            parts.append(f'<rect class="e" x="{LEFT + i * bar_w:.1f}" y="{TOP + PLOT_H + 4}" '
                         f'width="{max(bar_w, 2):.2f}" height="10" fill="#d62728">'
                         f'<title>{v} failed app request(s)</title></rect>')
    for i, v in enumerate(s["write_errors"]):
        if v:
            parts.append(f'<rect x="{LEFT + i * bar_w:.1f}" y="{TOP + PLOT_H + 16}" '
                         f'width="{max(bar_w, 2):.2f}" height="6" fill="#ff9f1c"/>')
    step = 1 if total <= 20 else 5 if total <= 120 else 30
    t = 0
    while t <= total:
        parts.append(f'<line x1="{x(t):.1f}" y1="{TOP + PLOT_H}" x2="{x(t):.1f}" '
                     f'y2="{TOP + PLOT_H + 26}" stroke="#999"/><text x="{x(t):.1f}" '
                     f'y="{TOP + PLOT_H + 40}" font-size="11" text-anchor="middle">{t}s</text>')
        t += step
    placed = layout_labels([(x(e["t"]), e["label"]) for e in report["events"]
                            if 0 <= e["t"] <= total])
    shown = [e for e in report["events"] if 0 <= e["t"] <= total]
    for e, (lx, ly, text) in zip(shown, placed, strict=True):
        colour = "#555" if e.get("journal") else "#000"
        parts.append(f'<line x1="{x(e["t"]):.1f}" y1="{TOP}" x2="{x(e["t"]):.1f}" '
                     f'y2="{TOP + PLOT_H}" stroke="{colour}" stroke-dasharray="3,3"/>'
                     f'<text class="label" x="{lx:.1f}" y="{ly}" font-size="{LABEL_FONT}" '
                     f'fill="{colour}" stroke="#fafafa" stroke-width="3" paint-order="stroke">'
                     f'{html.escape(text)}</text>')
    parts.append(f'<text x="8" y="{TOP + 10}" font-size="11">{peak}</text>'
                 f'<text x="8" y="{TOP + PLOT_H}" font-size="11">0</text>'
                 f'<text x="{LEFT}" y="{H - 8}" font-size="11">blue: acknowledged writes per '
                 f'100 ms; red: failed app requests; orange: failed SQL writes; dashed: '
                 f'operation steps</text></svg>')
    return "".join(parts)


def _row(k: str, v: Any) -> str:
    return f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"


def drill_site_line(site: dict[str, Any]) -> str:
    """A site in a drill's report, in words (the text and HTML views both show it)."""
    where = ("primary before and after" if site["primary_before"] and site["primary_after"]
             else "primary before" if site["primary_before"]
             else "primary after" if site["primary_after"] else "no primary")
    return (f"VIP {site.get('vip') or '-'}, nodes {', '.join(site['nodes'])}; {where}"
            + (f"; {site['role']}" if site.get("role") else ""))


def render(report: dict[str, Any]) -> str:
    sql, app = report["sql"], report["app"]
    judged = report.get("data_loss") or {}
    verdict = (f"PASSED: {judged.get('sentence') or 'nothing acknowledged was lost'}"
               if report["ok"] else "FAILED: " + (report["error"] or judged.get("sentence")
                                                  or f"{sql['lost']} acknowledged writes lost"))
    stated = judged.get("stated") or {}
    summary = "".join(_row(k, v) for k, v in [
        ("scenario", report["scenario"]), ("cluster", report["cluster"]),
        ("started", report["started_at"]), ("duration", f"{report['duration_s']} s"),
        ("write outage (longest gap between acknowledged writes)",
         f"{sql['write_outage_s']} s"),
        ("acknowledged writes / failed attempts", f"{sql['acknowledged']} / {sql['errors']}"),
        ("acknowledged writes lost (RPO)", sql["lost"]),
        ("what the rules stated at consent (the operation's data-loss verdict)",
         f"{stated.get('verdict')}: {stated.get('sentence')}" if stated else "no verdict"),
        ("RPO in time (newest acknowledged before the cut, less the newest kept)",
         f"{report.get('rpo_s', 0.0)} s"),
        *((f"site {name}", drill_site_line(site))
          for name, site in (report.get("sites") or {}).items()
          if len(report.get("sites") or {}) > 1),
        *((("rebuilt at the cloud location", rebuild_line(report["rebuild"])),)
          if report.get("rebuild") else ()),
        ("through the pooler: acknowledged / failed attempts / longest wait",
         pooled_line(report.get("pooled"))),
        ("app requests / failed", f"{app['requests']} / {app['failed']}"),
        ("app error window (first to last failed request)", f"{app['error_window_s']} s"),
        ("returning users' logins during the write outage (in / tried)",
         "{succeeded} / {attempted}".format(**app.get("logins_during_outage")
                                             or {"succeeded": 0, "attempted": 0})),
        ("users registered / missing afterwards",
         f"{app['registered']} / {len(app['registrations_missing'])}"),
        ("slowest app request", f"{app['max_latency_ms']} ms"),
    ])
    ops = "".join(
        f"<tr><td>{html.escape(o['command'])}</td><td>{o['start_s']} s</td>"
        f"<td>{o['duration_s']} s</td><td>{o['exit_code']}</td>"
        f"<td>{o.get('write_outage_s') if o.get('write_outage_s') is not None else ''}</td></tr>"
        for o in report["operations"])
    steps = "".join(f"<tr><td>{i}</td><td>{e['t']} s</td><td>{html.escape(e['label'])}</td>"
                    "</tr>" for i, e in enumerate(report["events"], 1))

    def topo(t: dict[str, Any]) -> str:
        nodes = ", ".join(f"{h}: {r}" for h, r in t["nodes"].items())
        return (f"primary <b>{html.escape(str(t['primary']))}</b>, VIP on "
                f"{html.escape(', '.join(t['vip_holders'] or []) or 'nobody')}; "
                f"{html.escape(nodes)}; {'healthy' if t['healthy'] else 'UNHEALTHY'}")

    colour = "#1a7f37" if report["ok"] else "#c62828"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>drctl drill: {html.escape(report['scenario'])} on {html.escape(report['cluster'])}</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1140px;
color:#222}}
h1{{font-size:1.5rem}} .verdict{{color:{colour};font-weight:600;font-size:1.15rem}}
table{{border-collapse:collapse;margin:.5rem 0 1.5rem}} th,td{{border:1px solid #ddd;
padding:.3rem .6rem;text-align:left;vertical-align:top}} th{{background:#f4f4f4;font-weight:500}}
svg{{width:100%;height:auto;border:1px solid #eee}}
</style></head><body>
<h1>drctl drill: {html.escape(report['scenario'])} on cluster {html.escape(report['cluster'])}</h1>
<p class="verdict" id="verdict">{html.escape(verdict)}</p>
<h2>Timeline</h2>
{_chart(report)}
<h2>Summary</h2><table id="summary">{summary}</table>
<h2>Topology</h2><p>before: {topo(report['topology_before'])}</p>
<p>after: {topo(report['topology_after'])}</p>
<h2>Operations</h2><table><tr><th>command</th><th>started at</th><th>took</th><th>exit</th>
<th>write outage (drctl)</th></tr>{ops}</table>
<h2>Steps</h2><table id="steps"><tr><th>#</th><th>at</th><th>step</th></tr>{steps}</table>
<p>JSON: {html.escape(report['json_path'])}</p>
</body></html>
"""
