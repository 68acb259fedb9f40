"""The node-side steps of switchover, failover and failback, and fencing: the command
table and its arguments (the steps themselves: handover, fencing, rejoin).

Each prints one JSON object, so a step costs one Ansible task and its result is data.

  hold-vip SECONDS        keep this node's VIP check passing while PostgreSQL stops
                          (expires by itself; a forgotten hold cannot pin the VIP)
  release-vip             drop the hold and stop keepalived: the peers take the VIP now
  stop-primary            CHECKPOINT, stop PostgreSQL cleanly, prove it (pg_controldata)
  handover --target-address A   the critical window of a switchover, run on the old
                          primary: hold VIP, stop cleanly, target replays past the
                          shutdown checkpoint, promote it, release the VIP
  promote [--after-lsn L] wait until WAL up to L is replayed, promote, wait for keepalived
                          to see this node as eligible (BACKUP/MASTER)
  take-over               a failover's node side in one process: promote (unless already
                          done), drop a gone synchronous standby, wait for the VIP, prove a
                          write (drctl failover and playbooks/failover.yml both run it)
  wait-vip                wait until this node holds the VIP
  fence --reason R        mark this node fenced and stop PostgreSQL: it must not serve
  unfence                 remove the mark (drctl failback does this after a rejoin)
  auto-pause --reason R   pause automatic failover here for an operation, as the repmgr
                          role's pause does: the marker (an existing one is kept), then
                          repmgrd stopped (bounded by its unit's stop timeout); with
                          --probe, the node's probe after it, the pause's answer beside
  fence-check             systemd ExecStartPre of PostgreSQL: refuse to start when fenced;
                          as a primary, start only when still the newest primary (a peer
                          confirms it, or it ran as primary since boot); fence itself when
                          a peer knows a newer timeline; otherwise hold (stay down). A
                          start removes a postmaster.pid that no postmaster holds
  confirm-primary         an operator's consent: start a held node as the primary once
  archive-timelines       the newest timeline each object store's archive holds, as
                          fence-check, the guard and automatic failover ask it
  guard [--once]          loop: fence this node if it is a writable primary while a peer
                          is a writable primary on a newer timeline (a healed partition);
                          on a standby, record its lag behind the primary (lag file);
                          while a start is held, ask again and start when it may
  prove-write [--node N]  on a new primary: write a row, read its timeline's switch point
  divergence --fork-lsn L summary of this node's WAL past the fork point (pg_waldump)
  set-aside --fork-lsn L  before a rewind: keep a copy of diverged data, or only pg_wal
  diverged-list           the kept copies of diverged data, with what each holds
  diverged-drop NAME      delete one kept copy (drctl diverged drop asks first)
  follow --slot S ...     a node that holds this cluster's data follows the primary its
                          standby settings (on stdin, as pg_replication renders them) name:
                          settings, standby.signal, start or reload, streaming, slots
  repoint --primary-address A   a failover's other standbys: the same as follow, with the
                          node's own standby settings naming the new primary's address
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from drctl.node import fencing, handover, rejoin
from drctl.node.common import Config


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("hold-vip")
    s.add_argument("seconds", type=int)
    sub.add_parser("release-vip")
    s = sub.add_parser("stop-primary")
    s.add_argument("--timeout", type=int, default=120)
    s = sub.add_parser("promote")
    s.add_argument("--after-lsn")
    s.add_argument("--catch-up", action="store_true")
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--vrrp-wait", type=float, default=3)
    # clear a live synchronous_standby_names right after the promotion (failover: the
    # synchronous standby may be the node that is gone)
    s.add_argument("--relax-synchronous", action="store_true")
    s = sub.add_parser("take-over")
    s.add_argument("--node", help="the name the proving row records (default: this node)")
    s.add_argument("--timeout", type=float, default=10,
                   help="seconds to replay what was received before promoting anyway")
    s.add_argument("--vip-timeout", type=float, default=15)
    s = sub.add_parser("handover")
    s.add_argument("--target-address", required=True)
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--vrrp-wait", type=float, default=2.5)
    # the armed poolers (drctl.node.pooler.arm): told to pause just before the clean stop
    s.add_argument("--pooler-token", default="", help="the switchover's pooler channel")
    s.add_argument("--poolers", default="", help="the armed poolers' hosts, comma-separated")
    s.add_argument("--pooler-database", default="app", help="the database they listen in")
    s.add_argument("--pooler-timeout", type=float, default=8,
                   help="seconds for every armed pooler to say it paused")
    s = sub.add_parser("wait-vip")
    s.add_argument("--timeout", type=float, default=15)
    # on a target promoted from the old primary (handover promotes it over SQL): remove its
    # standby settings first, as promote does, so it is exactly what provision makes a primary
    s.add_argument("--drop-standby-conf", action="store_true")
    s = sub.add_parser("fence")
    s.add_argument("--reason", required=True)
    sub.add_parser("unfence")
    s = sub.add_parser("auto-pause")
    s.add_argument("--reason", required=True)
    s.add_argument("--by", default="operation")
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--probe", action="store_true",
                   help="answer with the node's probe taken after the pause")
    s = sub.add_parser("fence-check")
    s.add_argument("--wait", type=float, help="seconds to ask the peers before holding")
    s = sub.add_parser("confirm-primary")
    s.add_argument("--by", default="operator")
    sub.add_parser("archive-timelines")
    s = sub.add_parser("guard")
    s.add_argument("--once", action="store_true")
    s.add_argument("--interval", type=float, default=2)
    sub.add_parser("relax-synchronous")
    s = sub.add_parser("prove-write")
    s.add_argument("--node")
    s = sub.add_parser("divergence")
    s.add_argument("--fork-lsn", required=True)
    s.add_argument("--timeline", type=int, required=True)
    s.add_argument("--pgdata")
    s = sub.add_parser("set-aside")
    s.add_argument("--fork-lsn", required=True)
    s.add_argument("--timeline", type=int, required=True)
    s.add_argument("--pgdata")
    s.add_argument("--discard-diverged", action="store_true")
    s.add_argument("--copy-timeout", type=float, default=3600)
    sub.add_parser("diverged-list")
    s = sub.add_parser("diverged-drop")
    s.add_argument("name")
    for name, address in (("follow", "check that this node holds the primary's cluster"),
                          ("repoint", "the new primary's address (required)")):
        s = sub.add_parser(name)  # repoint is follow with the node's own settings
        s.add_argument("--primary-address", help=address)
        s.add_argument("--slot", action="append", default=[],
                       help="a slot this node keeps for another node (repeat)")
        s.add_argument("--stream-timeout", type=float, default=60)
        s.add_argument("--start-timeout", type=float, default=300)
        s.add_argument("--owner", default="postgres", help="who owns the files it writes")




COMMANDS: dict[str, Callable[[Config, argparse.Namespace], None]] = {
    "hold-vip": handover.cmd_hold_vip,
    "release-vip": handover.cmd_release_vip,
    "stop-primary": handover.cmd_stop_primary,
    "promote": handover.cmd_promote,
    "take-over": handover.cmd_take_over,
    "wait-vip": handover.cmd_wait_vip,
    "handover": handover.cmd_handover,
    "relax-synchronous": handover.cmd_relax_synchronous,
    "prove-write": handover.cmd_prove_write,
    "fence": fencing.cmd_fence,
    "auto-pause": fencing.cmd_auto_pause,
    "unfence": fencing.cmd_unfence,
    "fence-check": fencing.cmd_fence_check,
    "confirm-primary": fencing.cmd_confirm_primary,
    "archive-timelines": fencing.cmd_archive_timelines,
    "guard": fencing.cmd_guard,
    "divergence": rejoin.cmd_divergence,
    "set-aside": rejoin.cmd_set_aside,
    "diverged-list": rejoin.cmd_diverged_list,
    "diverged-drop": rejoin.cmd_diverged_drop,
    "follow": rejoin.cmd_follow,
    "repoint": rejoin.cmd_repoint,
}
