"""Every SQL statement drctl runs to learn a node's state or to change its role.

Defined once here; the probe (`drctl status`), the watcher, the node steps and
automatic failover all import them, so a query has one definition to fix.
"""

from __future__ import annotations

import re

# The timeline a primary writes on: the first 8 hex digits of its current WAL file.
TIMELINE = "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"

# A host of the cloud location (group cloud), as status asks it: its PostgreSQL when it
# runs (a placeholder never does; a cluster rebuilt there by `drctl rebuild` does).
CLOUD_STATE = f"""
select json_build_object(
  'running', true,
  'in_recovery', pg_is_in_recovery(),
  'timeline', case when pg_is_in_recovery()
                   then (select timeline_id from pg_control_checkpoint()) else {TIMELINE} end,
  'lsn', case when pg_is_in_recovery() then pg_last_wal_replay_lsn()
              else pg_current_wal_lsn() end::text
)"""

# Settings and counters every node answers, primary or standby.
QUERY_COMMON = """
select json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'server_version', current_setting('server_version'),
  'ssl', current_setting('ssl') = 'on',
  'synchronous_standby_names', current_setting('synchronous_standby_names'),
  'synchronous_commit', current_setting('synchronous_commit'),
  'wal_log_hints', current_setting('wal_log_hints') = 'on',
  'data_checksums', current_setting('data_checksums') = 'on',
  'prepared_xacts', (select count(*) from pg_prepared_xacts),
  'checkpoint_timeline', (select timeline_id from pg_control_checkpoint()),
  'now_epoch', extract(epoch from now())
)"""

# A primary: its WAL position and timeline, its standbys, slots and archiver.
QUERY_PRIMARY = f"""
select json_build_object(
  'lsn', pg_current_wal_lsn()::text,
  'timeline', {TIMELINE},
  'replication', coalesce((select json_agg(json_build_object(
      'application_name', r.application_name,
      'client_addr', host(r.client_addr),
      'state', r.state,
      'sync_state', r.sync_state,
      'sent_lsn', r.sent_lsn::text,
      'flush_lsn', r.flush_lsn::text,
      'replay_lsn', r.replay_lsn::text,
      'lag_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint,
      'replay_lag_s', extract(epoch from r.replay_lag),
      'ssl', coalesce(s.ssl, false),
      'ssl_version', s.version))
    from pg_stat_replication r left join pg_stat_ssl s on s.pid = r.pid), '[]'::json),
  'slots', coalesce((select json_agg(json_build_object(
      'slot_name', slot_name, 'active', active, 'wal_status', wal_status,
      'restart_lsn', restart_lsn::text,
      'retained_bytes', case when restart_lsn is null then 0
                        else pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint end))
    from pg_replication_slots where slot_type = 'physical'), '[]'::json),
  'archive_mode', current_setting('archive_mode'),
  'archiver', (select json_build_object(
      'archived_count', archived_count, 'last_archived_wal', last_archived_wal,
      'last_archived_time', last_archived_time, 'failed_count', failed_count,
      'last_failed_wal', last_failed_wal, 'last_failed_time', last_failed_time)
    from pg_stat_archiver),
  'archive_ready', (select count(*) from pg_ls_archive_statusdir() where name like '%.ready'),
  'archive_oldest_ready_s', (select extract(epoch from now() - min(modification))
                             from pg_ls_archive_statusdir() where name like '%.ready')
)"""

# A standby: how much WAL it holds (received and flushed to its disk, and replayed),
# on which timeline, and when it last heard from its upstream. The timeline is the
# newest it knows: its receiver's, else the newest history file it holds (the last
# restartpoint's alone can be a timeline behind once the receiver has stopped).
QUERY_STANDBY = """
select json_build_object(
  'lsn', pg_last_wal_replay_lsn()::text,
  'receive_lsn', pg_last_wal_receive_lsn()::text,
  'replay_paused', pg_is_wal_replay_paused(),
  'last_replay_age_s', extract(epoch from now() - pg_last_xact_replay_timestamp()),
  'timeline', greatest(
      (select received_tli from pg_stat_wal_receiver),
      (select timeline_id from pg_control_checkpoint()),
      (select max(('x' || substr(name, 1, 8))::bit(32)::int) from pg_ls_waldir()
        where name ~ '^[0-9A-F]{8}[.]history$')),
  'receiver', (select json_build_object(
      'status', status, 'sender_host', sender_host, 'slot_name', slot_name,
      'flushed_lsn', flushed_lsn::text, 'received_tli', received_tli,
      'last_msg_age_s', extract(epoch from now() - last_msg_receipt_time),
      'ssl', conninfo like '%sslmode=verify%' or conninfo like '%sslmode=require%',
      'conninfo_sslmode', substring(conninfo from 'sslmode=([a-z-]+)'))
    from pg_stat_wal_receiver)
)"""

# What the watcher asks every node every second (a role with pg_monitor suffices).
QUERY_WATCH = f"""
select json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'lsn', case when pg_is_in_recovery()
              then coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text
              else pg_current_wal_flush_lsn()::text end,
  'timeline', case when pg_is_in_recovery()
                   then (select received_tli from pg_stat_wal_receiver)
                   else {TIMELINE} end,
  'synchronous_commit', current_setting('synchronous_commit'),
  'synchronous_standby_names', current_setting('synchronous_standby_names'),
  'standbys', coalesce((select json_object_agg(application_name, json_build_object(
      'sync_state', sync_state, 'state', state, 'flush_lsn', flush_lsn::text))
    from pg_stat_replication), '{{}}'::json)
)"""

# The newest timeline a standby knows: the one it receives, its last restartpoint's, and
# the newest history file in its pg_wal (the rewind role may list pg_wal); NULL if none.
STANDBY_TIMELINE = (
    "greatest((select received_tli from pg_stat_wal_receiver), "
    "(select timeline_id from pg_control_checkpoint()), "
    "(select max(('x' || substr(f, 1, 8))::bit(32)::int) "
    "from pg_ls_dir('pg_wal', true, false) f where f ~ '^[0-9A-F]{8}[.]history$'))")

# A peer's role as fence-check and the guard ask it: 'standby|TL' (TL may be empty), or
# 'primary|TL|LSN'.
QUERY_PEER_ROLE = (
    "select case when pg_is_in_recovery() then 'standby|' || "
    f"coalesce({STANDBY_TIMELINE}::text, '') else 'primary|' || "
    f"{TIMELINE} || '|' || pg_current_wal_lsn() end")

IN_RECOVERY = "select pg_is_in_recovery()"
CURRENT_POSITION = f"select pg_current_wal_lsn(), {TIMELINE}"
REPLAY_POSITIONS = "select pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()"
REPLAY_LSN = "select pg_last_wal_replay_lsn()"
PREPARED_XACTS = "select count(*) from pg_prepared_xacts"
SYSTEM_IDENTIFIER = "select system_identifier from pg_control_system()"
WAL_RECEIVER_STATUS = "select status from pg_stat_wal_receiver"
# On a standby: slots that hold WAL back (left from its time as a primary, say); every
# node's own slots for the other nodes are created without reserving WAL (restart_lsn null).
STALE_SLOTS = ("select slot_name from pg_replication_slots "
               "where not active and restart_lsn is not null")
SLOT_NAMES = "select slot_name from pg_replication_slots"
SLOT_NAME = "^[a-z0-9_]{1,63}$"  # what the roles make of a host name (and all a slot may be)


def _slot(name: str) -> str:
    if not re.fullmatch(SLOT_NAME, name):
        raise ValueError(f"not a replication slot name: {name!r}")
    return name


def drop_slot(name: str) -> str:
    return f"select pg_drop_replication_slot('{_slot(name)}')"


def create_slot(name: str) -> str:
    """A physical slot that reserves no WAL until a standby first streams from it."""
    return f"select pg_create_physical_replication_slot('{_slot(name)}', false)"


# The promotion, signalled without pg_promote's own wait: that wait looks only every
# 100 ms, so the caller asks IN_RECOVERY itself, a few ms apart (drctl.node.steps).
PROMOTE_NOWAIT = "select pg_promote(false)"


def relax_synchronous() -> list[str]:
    """Stop waiting for a synchronous standby that is gone (failback restores it)."""
    return ["alter system set synchronous_standby_names = ''", "select pg_reload_conf()"]


def failover_proof(node: str) -> str:
    """Write a row on the new primary and read back its timeline and that timeline's
    history file (the switch point): one line 'TL', then the history's lines. The row is
    committed locally (synchronous_commit = local): it proves that the node takes writes,
    and must not wait for a synchronous standby that went with the old primary while the
    server has not yet applied the cleared synchronous_standby_names (its checkpointer
    applies a reload, and under load that was seen to take over 30 s)."""
    if not node.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"not a host name: {node!r}")
    return (
        "set synchronous_commit = local; "
        "create table if not exists drctl_failover_log (at timestamptz default now(), "
        "node text, timeline int); "
        f"insert into drctl_failover_log (node, timeline) values ('{node}', {TIMELINE}); "
        "select timeline || E'\\n' || coalesce((select pg_read_file('pg_wal/' || "
        "upper(lpad(to_hex(timeline), 8, '0')) || '.history')), '') "
        "from drctl_failover_log order by at desc limit 1")


def writable_after_wait(wait_ms: int) -> str:
    """The VIP's check (drctl-node vip-track): on a node in recovery, wait inside the
    server, 20 ms apart, up to WAIT_MS for it to leave recovery (a promotion, whoever makes
    it, is seen within tens of milliseconds), then answer pg_is_in_recovery() itself: 'f'
    is a writable primary."""
    wait = int(wait_ms)
    return ("do $$ begin while pg_is_in_recovery() and clock_timestamp() < "
            f"statement_timestamp() + interval '{wait} ms' loop perform pg_sleep(0.02); "
            f"end loop; end $$; {IN_RECOVERY}")
