"""`drctl-node`: the one entry point of drctl's node programs.

  drctl-node [--config PATH] probe
  drctl-node [--config PATH] STEP ...        (see drctl.node.steps)
  drctl-node [--config PATH] auto validate|promote|follow|event ...
  drctl-node [--watch-config PATH] watch [--show]
  drctl-node [--config PATH] metrics --out PATH|- [--cluster NAME] [--stanza NAME] [--every S] ...
  drctl-node [--pooler-config PATH] metrics --pooler --out PATH|- [--cluster NAME]
                                              (an app host: its pooler's series)
  drctl-node [--files-config PATH] files sync|state
  drctl-node [--app-vip-config PATH] [--files-config PATH] [--pooler-config PATH] app state
                                              (an app host: drctl.node.appvip)
  drctl-node [--pooler-config PATH] pooler pause|resume|state|guard|await|arm|listen [--by WHO]
                                    [--keep-pausing] [--until-new-primary S] [--timeline-above N]
                                              (an app host's PgBouncer: drctl.node.pooler)
  drctl-node [--backup-config PATH] backup backup|info|restore|drop|verify ...
                                              (a repository host: drctl.node.backup)
  drctl-node [--vip-track-config PATH] vip-track
  drctl-node [--app-vip-config PATH] app-vip-track
                                              (keepalived's tracked file: drctl.node.viptrack)

The wrappers the drctl_node role installs (drctl-node, drctl-probe, drctl-auto, and
drctl-backup on the repository hosts) call main() with the configuration paths the
roles' variables name.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from drctl.node import common


def _options(add_help: bool = True) -> argparse.ArgumentParser:
    # no abbreviations: `metrics --pooler` must not read as --pooler-config
    p = argparse.ArgumentParser(prog="drctl-node", add_help=add_help, allow_abbrev=False)
    p.add_argument("--config", default=common.DEFAULT_CONFIG)
    p.add_argument("--watch-config", default=common.DEFAULT_WATCH_CONFIG)
    p.add_argument("--files-config", default=common.DEFAULT_FILES_CONFIG)
    p.add_argument("--backup-config", default=common.DEFAULT_BACKUP_CONFIG)
    p.add_argument("--app-vip-config", default=common.DEFAULT_APP_VIP_CONFIG)
    p.add_argument("--pooler-config", default=common.DEFAULT_POOLER_CONFIG)
    p.add_argument("--vip-track-config", default=common.DEFAULT_VIP_TRACK_CONFIG)
    return p


# The commands main() dispatches before the steps: their parser leaves the steps out, so
# that `app state`, `files sync`, `pooler ...` and `backup ...` (status asks them every
# time, timers every few seconds) do not compile the steps, the guard and the rules core
# from the zip (about 0.1 CPU-s a call, more than most of them cost otherwise).
LIGHT_COMMANDS = frozenset({"watch", "files", "app", "pooler", "metrics", "backup", "auto",
                            "vip-track", "app-vip-track"})


def parser(with_steps: bool = True) -> argparse.ArgumentParser:
    p = _options()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("probe")
    s = sub.add_parser("metrics", help="write drctl's metrics for node_exporter")
    s.add_argument("--out", required=True, help="file to write ('-': print them)")
    s.add_argument("--cluster", default="", help="the cluster label of every series")
    s.add_argument("--stanza", default="", help="pgBackRest stanza (empty: no backups here)")
    s.add_argument("--backup-cache", default="/run/drctl/backup-info.json",
                   help="where pgBackRest's last answer is kept")
    s.add_argument("--backup-every", type=float, default=300.0,
                   help="seconds that answer is reused before asking again")
    s.add_argument("--pooler", action="store_true",
                   help="an app host: its pooler's series (--pooler-config), nothing else")
    s.add_argument("--every", type=float, default=0.0, metavar="SECONDS",
                   help="write every SECONDS, for ever (its service); 0: once")
    s = sub.add_parser("watch")
    s.add_argument("--show", action="store_true", help="print the record and exit")
    s.add_argument("--settle", type=float, default=0.0,
                   help="with --show: wait up to this long for a dying primary to be lost")
    s = sub.add_parser("files", help="copy the application's files to the other sites")
    s.add_argument("action", choices=["sync", "state"])
    s = sub.add_parser("app", help="an app host's application VIP and files, for status")
    s.add_argument("action", choices=["state"])
    s = sub.add_parser("pooler", help="the app host's PgBouncer: pause, resume, state, guard")
    s.add_argument("action",
                   choices=["pause", "resume", "state", "guard", "await", "arm", "listen"])
    s.add_argument("--by", default="", help="who pauses or resumes (recorded)")
    s.add_argument("--timeout", type=float, default=None,
                   help="pause: seconds to wait for transactions in flight")
    s.add_argument("--keep-pausing", action="store_true",
                   help="pause: past the timeout, leave the pooler pausing (a failover)")
    s.add_argument("--until-new-primary", type=float, default=0, metavar="SECONDS",
                   help="pause: resume as soon as a new primary answers (at most SECONDS)")
    s.add_argument("--taking-back", default="", metavar="WHO_PAUSED",
                   help="resume: the pause this resume ends (reports who ended it before)")
    s.add_argument("--every", type=float, default=0, metavar="SECONDS",
                   help="guard: look every SECONDS, for ever (the guard's service)")
    s.add_argument("--timeline-above", type=int, default=0, help="await: the old timeline")
    s.add_argument("--max", type=float, default=60,
                   help="await, arm, listen: seconds before giving up")
    s.add_argument("--token", default="", help="arm, listen: the switchover's channel")
    s.add_argument("--primary-address", default="",
                   help="arm, listen: the old primary, where the hand-over speaks")
    sub.add_parser("vip-track", help="keep keepalived's tracked file: may this node hold "
                   "the VIP (its service)")
    sub.add_parser("app-vip-track", help="keep keepalived's tracked file on an app host: "
                   "may it hold the application VIP (its service)")
    s = sub.add_parser("auto")
    s.add_argument("args", nargs=argparse.REMAINDER)
    s = sub.add_parser("backup", help="the repository host's backups (drctl-backup)",
                       add_help=False)
    s.add_argument("args", nargs=argparse.REMAINDER)
    if with_steps:
        from drctl.node import steps

        steps.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    known, rest = _options(add_help=False).parse_known_args(args)
    if rest == ["probe"]:
        # `drctl status` runs this on every node each time: import only what it needs
        # (compiling the rules core and the steps from the zip cost more than the probe)
        from drctl.node import probe

        return probe.main(common.Config.load(known.config))
    a = parser(with_steps=not (rest and rest[0] in LIGHT_COMMANDS)).parse_args(args)
    if a.cmd == "watch":
        from drctl.node import watch

        return watch.main(a.watch_config, a)
    if a.cmd == "files":  # app and backup hosts: no node.json there
        from drctl.node import files

        return files.main(a.files_config, a.action)
    if a.cmd == "app":  # app hosts: no node.json there
        from drctl.node import appvip

        return appvip.main(a.app_vip_config, a.files_config, a.pooler_config)
    if a.cmd == "pooler":  # app hosts
        from drctl.node import pooler

        return pooler.main(a.pooler_config, a.action, by=a.by, timeout=a.timeout,
                           keep_pausing=a.keep_pausing,
                           until_new_primary_s=a.until_new_primary,
                           timeline_above=a.timeline_above, max_s=a.max,
                           taking_back=a.taking_back, every_s=a.every, token=a.token,
                           primary_address=a.primary_address)
    if a.cmd == "metrics" and a.pooler:  # app hosts: no node.json there
        from drctl.node import metrics

        if a.every > 0:
            kept = common.KeptSessions()
            try:
                return metrics.every(a.every, lambda: metrics.main_pooler(
                    a.pooler_config, a.out, cluster=a.cluster, kept=kept),
                    common.code_file(__file__))
            finally:
                kept.close()
        return metrics.main_pooler(a.pooler_config, a.out, cluster=a.cluster)
    if a.cmd == "vip-track":  # as keepalived's script user: its own configuration
        from drctl.node import viptrack

        return viptrack.main(a.vip_track_config)
    if a.cmd == "app-vip-track":  # app hosts
        from drctl.node import viptrack

        return viptrack.main_app(a.app_vip_config)
    if a.cmd == "backup":  # repository hosts: no node.json there either
        from drctl.node import backup

        return backup.main(a.backup_config, a.args)
    c = common.Config.load(a.config)
    if a.cmd == "metrics":
        from drctl.node import metrics

        def write() -> int:
            return metrics.main(c, a.out, cluster=a.cluster, stanza=a.stanza,
                                backup_cache=a.backup_cache, backup_every_s=a.backup_every)

        if a.every > 0:
            return metrics.every(a.every, write, common.code_file(__file__))
        return write()
    if a.cmd == "auto":
        from drctl.node import repmgr_hooks as auto

        return auto.main(c, a.args)
    from drctl.node import steps

    try:
        steps.COMMANDS[a.cmd](c, a)
    except common.StepFailed as exc:
        common.emit(ok=False, error=str(exc), **exc.data)
        return 1
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        common.emit(ok=False, error=str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
