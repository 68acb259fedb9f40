"""drctl's side of repmgrd's automatic failover, run by repmgrd as the postgres user.

repmgrd detects that the primary is gone and holds the vote; these commands decide
whether this standby may really take over (drctl.rules.decide.auto_promotion: the same
data-loss rule as `drctl failover`, from the same watcher's record, read from the
witness) and promote it the way drctl does, writing every decision to drctl's event
log (one JSON object a line) that `drctl status` and `drctl auto status` read.

  validate NODE_ID VISIBLE TOTAL   failover_validation_command: exit 0 to promote
  promote                 promote_command: pg_promote(), repmgr's records, relax sync
  follow NODE_ID          follow_command: `repmgr standby follow`
  event NODE_ID EVENT OK DETAILS   event_notification_command: log the event
  stand-in                the guard's, where repmgrd cannot start (drctl.node.standin):
                          validate as an election would, and promote when it passes
  arming POLICY_JSON      before arming (the repmgr role): exit 0 if that policy may be
                          armed (drctl.rules.decide.auto_arming), else 1, saying why
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from drctl.node import archive, handover, liveness, probe, watch
from drctl.node.common import Config, now_iso, psql, read_json, run
from drctl.rules import decide, sql
from drctl.rules.facts import ClusterFacts, Liveness, NodeFacts, WatcherFacts
from drctl.rules.policy import Policy


def log(c: Config, s: Mapping[str, Any], **event: Any) -> None:
    event = {"at": now_iso(), "host": c.name, **event}
    with open(s["event_log"], "a") as fh:
        fh.write(json.dumps(event) + "\n")
    print(json.dumps(event), flush=True)


def witness_records(c: Config, s: Mapping[str, Any]) -> tuple[list[WatcherFacts], str]:
    """Every watcher's record as the witness holds it; (records, witness error)."""
    rc, out, err = run([c.psql, "-XAtq", s["witness_conninfo"], "-c", watch.witness_query()],
                       timeout=10, env={**os.environ, "PGPASSFILE": s["passfile"]})
    if rc != 0:
        return [], (err.splitlines() or ["?"])[-1][:160]
    rows = json.loads(out) if out else None
    return [WatcherFacts.from_json(str(r.get("watcher")), r) for r in rows or []], ""


def probe_primary(c: Config, host: str, seconds: float) -> Liveness:
    """Probe HOST, the primary the watchers saw last, at its address among this node's
    peers (node.json), on the cluster's port."""
    address = next((p.get("address") for p in c.peers if p.get("name") == host), None)
    if not address:
        return Liveness(host, 0.0, 0, None, f"no address for {host} among this node's peers")
    return liveness.probe(host, str(address), c.pg_port, seconds,
                          decide.LIVENESS_PROBE_EVERY_S)


def decision(c: Config, s: Mapping[str, Any]) -> decide.Decision:
    """Probe the primary the watchers saw last for as long as the rules say (the object
    stores' archives asked meanwhile), then gather the facts (this node's WAL, the
    watchers' record, fence/pause/location) and decide."""
    policy = Policy.from_options(s.get("policy") or {})
    planned, _ = witness_records(c, s)
    host, seconds = decide.liveness_probe(ClusterFacts((), tuple(planned)), policy)
    # the object stores' archives are asked while the liveness probe runs (it takes its
    # seconds anyway): no promotion waits for them
    with ThreadPoolExecutor(max_workers=1) as pool:
        asked = pool.submit(archive.answers, c)
        live = probe_primary(c, host, seconds) if host else None
        archives = asked.result()
    try:
        pg: dict[str, Any] | None = probe.postgres_state(c, as_user=None)
        error = ""
    except (RuntimeError, ValueError) as exc:
        pg, error = None, str(exc)
    me = NodeFacts.from_probe(c.name, {"postgres": pg, "fenced": os.path.exists(c.fence_file)},
                              error=error)
    watchers, witness_error = witness_records(c, s)
    local = decide.LocalAuto(fenced=me.fenced, paused=os.path.exists(c.auto_paused),
                             location=str(s.get("location")),
                             primary_location=str(s.get("primary_location")),
                             witness_error=witness_error)
    return decide.auto_promotion(ClusterFacts((me,), tuple(watchers)), c.name, policy,
                                 local, live, archives)


def loss_window(loss: decide.DataLoss | None) -> dict[str, float] | None:
    """The asynchronous window the data-loss statement names, for the event log: commits
    acknowledged from FROM (the watcher's last sighting, seconds since the epoch) for
    SECONDS may be on no other host. None when the statement names no window."""
    if loss is None or loss.window_s is None or loss.window_from is None:
        return None
    return {"from": round(loss.window_from, 3), "seconds": round(loss.window_s, 3)}


def cmd_validate(c: Config, s: Mapping[str, Any], args: list[str]) -> int:
    node_id, visible, total = [*args, "?", "?", "?"][:3]
    d = decision(c, s)
    why = [g.detail for g in d.failed]
    log(c, s, step="auto-validate", result="passed" if d.proceed else "refused",
        detail="; ".join(why) or (d.data_loss.sentence if d.data_loss else "")
        + f" (visible nodes {visible} of {total})", node_id=node_id,
        evidence=list(d.data_loss.evidence) if d.data_loss else [],
        loss_window=loss_window(d.data_loss),
        gates=[{"name": g.name, "ok": g.ok, "detail": g.detail} for g in d.gates])
    return 0 if d.proceed else 1


def cmd_promote(c: Config, s: Mapping[str, Any], args: list[str]) -> int:
    start = time.monotonic()
    if os.path.exists(c.fence_file):
        log(c, s, step="auto-promote", result="refused", detail="this node is fenced")
        return 1
    if os.path.exists(c.auto_paused):
        # paused after the validation passed: an operation (or an operator) has taken
        # charge, and repmgrd is being stopped
        log(c, s, step="auto-promote", result="refused",
            detail="automatic failover was paused after the validation passed")
        return 1
    # pg_promote() itself, then repmgr's records as `repmgr standby promote` would leave
    # them, without its checks of the other nodes (repmgrd just made them: a dead primary
    # would cost a connection timeout here)
    # A synchronous standby that is gone would make every commit wait (repmgr's records'
    # below too): relax until `drctl failback` restores the configured value, as `drctl
    # failover` does: before the promotion (a promoted server applies the cleared list
    # only once its checkpointer, busy with the end-of-recovery checkpoint, reloads), and
    # once more after it.
    try:
        names = handover.relax_synchronous(c, as_user=None)
        done = handover.promote_and_wait(lambda q: psql(c, q, as_user=None), 60)
    except RuntimeError as exc:
        log(c, s, step="auto-promote", result="failed", detail=str(exc)[-300:])
        return 1
    if not done:
        log(c, s, step="auto-promote", result="failed",
            detail="pg_promote() was signalled, but the node is still in recovery after 60 s")
        return 1
    handover.drop_standby_conf(c)
    names = handover.relax_synchronous(c, as_user=None) or names
    node_id = int(s["node_id"])
    try:
        psql(c, "begin; update repmgr.nodes set active = false where type = 'primary' "
                        f"and node_id <> {node_id}; update repmgr.nodes set type = 'primary',"
                        f" upstream_node_id = null, active = true where node_id = {node_id};"
                        " commit", db="repmgr", as_user=None, timeout=30)
    except RuntimeError as exc:
        log(c, s, step="auto-promote", result="warning",
            detail="promoted, but repmgr's records were not updated: " + str(exc)[-200:])
    row = psql(c, sql.CURRENT_POSITION, as_user=None)
    position, _, tl = row.partition("|")
    log(c, s, step="promoted", result="ok", lsn=position, timeline=int(tl or 0), by="repmgrd",
        relaxed_synchronous=bool(names), seconds=round(time.monotonic() - start, 3))
    return 0


def cmd_stand_in(c: Config, s: Mapping[str, Any], args: list[str]) -> int:
    """repmgrd's election where repmgrd cannot start: the same validation (decision()),
    logged as such, then the same promotion when it passes."""
    d = decision(c, s)
    why = [g.detail for g in d.failed]
    log(c, s, step="auto-validate", result="passed" if d.proceed else "refused",
        by="drctl-guard (repmgrd cannot start while its upstream is not running)",
        detail="; ".join(why) or (d.data_loss.sentence if d.data_loss else ""),
        evidence=list(d.data_loss.evidence) if d.data_loss else [],
        loss_window=loss_window(d.data_loss),
        gates=[{"name": g.name, "ok": g.ok, "detail": g.detail} for g in d.gates])
    if not d.proceed:
        return 1
    return cmd_promote(c, s, args)


def cmd_follow(c: Config, s: Mapping[str, Any], args: list[str]) -> int:
    rc, out, err = run(["repmgr", "-f", s["repmgr_conf"], "standby", "follow",
                        f"--upstream-node-id={args[0]}", "--log-level=NOTICE"], timeout=120)
    log(c, s, step="auto-follow", result="ok" if rc == 0 else "failed",
        detail=(err or out)[-300:], upstream_node_id=args[0])
    return rc


def cmd_event(c: Config, s: Mapping[str, Any], args: list[str]) -> int:
    node_id, event, ok, detail = [*args, "", "", "", ""][:4]
    log(c, s, step="repmgr-event", result="ok" if ok == "1" else "failed", event=event,
        node_id=node_id, detail=detail[:300])
    return 0


COMMANDS = {"validate": cmd_validate, "promote": cmd_promote, "follow": cmd_follow,
            "event": cmd_event, "stand-in": cmd_stand_in}


def cmd_arming(args: list[str]) -> int:
    """Before anything is written: the policy the role is about to install, as JSON."""
    try:
        options = json.loads(args[0]) if args else None
    except ValueError as exc:
        print(f"drctl-auto arming: the policy is not JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(options, dict):
        print("drctl-auto arming: give the policy as a JSON object", file=sys.stderr)
        return 2
    gate = decide.auto_arming(Policy.from_options(options))
    print(gate.detail)
    return 0 if gate.ok else 1


def main(c: Config, args: list[str]) -> int:
    if args[:1] == ["arming"]:
        return cmd_arming(args[1:])
    if not args or args[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    s = read_json(c.auto_settings)
    if not isinstance(s, dict):
        print(f"drctl-auto: {c.auto_settings} is missing: automatic failover is not set up",
              file=sys.stderr)
        return 2
    os.environ["PGPASSFILE"] = s["passfile"]
    return COMMANDS[args[0]](c, s, args[1:])
