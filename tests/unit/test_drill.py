"""The drill's HTML report and the gap measure, from a synthetic report."""

from drctl.drill import _gaps
from drctl.drill_html import render


def report(**kw):
    base = {
        "scenario": "switchover", "cluster": "lab", "started_at": "2026-11-26T13:00:00+00:00",
        "duration_s": 2.0, "ok": True, "error": None,
        "sql": {"acknowledged": 3, "errors": 1, "write_outage_s": 0.5, "lost": 0},
        "app": {"requests": 2, "failed": 1, "error_window_s": 0.0, "registered": 1,
                "registrations_missing": [], "max_latency_ms": 12.5},
        "operations": [{"command": "drctl switchover --to pg2", "start_s": 0.5,
                        "duration_s": 1.0, "exit_code": 0, "write_outage_s": 0.4}],
        "events": [{"t": 0.5, "label": "<promoted> pg2", "journal": True}],
        "topology_before": {"primary": "pg1", "vip_holders": ["pg1"], "healthy": True,
                            "nodes": {"pg1": "primary", "pg2": "standby"}},
        "topology_after": {"primary": "pg2", "vip_holders": ["pg2"], "healthy": True,
                           "nodes": {"pg1": "standby", "pg2": "primary"}},
        "series": {"bin_s": 0.1, "writes": [1, 0, 2] + [0] * 17, "write_errors": [0] * 20,
                   "app_ok": [1] + [0] * 19, "app_errors": [0, 1] + [0] * 18},
        "json_path": "/tmp/r.json", "html_path": "/tmp/r.html",
    }
    return {**base, **kw}


def test_report_is_self_contained_and_escapes_labels():
    html = render(report())
    assert html.startswith("<!doctype html>") and '<svg id="timeline"' in html
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert "&lt;promoted&gt; pg2" in html and "<promoted>" not in html
    assert html.count('class="w"') == 2  # one bar per 100 ms bin with writes
    assert html.count('class="e"') == 1
    assert "PASSED" in html


def test_failed_drill_says_why():
    html = render(report(ok=False, error="drctl failover exited 8"))
    assert "FAILED: drctl failover exited 8" in html


def test_write_outage_is_the_longest_gap():
    assert _gaps([0.0, 0.1, 0.9, 1.0]) == 0.8
    assert _gaps([]) == 0.0


def test_auto_failover_drill_refuses_unless_armed(make_inventory, monkeypatch, tmp_path):
    import pytest

    from drctl import drill, status
    from drctl.errors import DrctlError
    from drctl.exitcodes import ExitCode

    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    healthy = {"healthy": True, "problems": [], "primary": "pg1", "nodes": [],
               "auto": {"state": "paused", "reasons": ["pg2: paused since T (maintenance)"]}}
    monkeypatch.setattr(status, "collect", lambda inv, save=True: healthy)
    with pytest.raises(DrctlError) as err:
        drill.run(make_inventory(), scenario="auto-failover", duration=1, rate=1, app_rate=0,
                  out_dir=tmp_path, say=print)
    assert err.value.code == ExitCode.REFUSED
    assert "paused" in str(err.value) and "maintenance" in str(err.value)


def test_step_labels_never_overlap():
    """A failover's steps come within milliseconds of each other: no two labels may
    share the same place (the report's timeline was unreadable there)."""
    from drctl import drill_html

    marks = [(400 + i * 0.5, f"step number {i} on pg2") for i in range(30)]
    marks += [(100.0, "steady state measured"), (900.0, "end")]
    placed = drill_html.layout_labels(sorted(marks))
    boxes = [(x, x + drill_html.label_width(t), y) for x, y, t in placed]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] != b[2] or a[1] + 4 <= b[0] or b[1] + 4 <= a[0], (a, b)
    assert all(y < drill_html.TOP + drill_html.PLOT_H for _, y, _ in placed)
    texts = [t for _, _, t in placed]
    assert "steady state measured" in texts and "end" in texts
    assert any(t.isdigit() for t in texts), "crowded steps fall back to their numbers"
