"""What drctl's CLI prints for the results operations return (only the CLI prints), one
module per theme: ha (plans, results, the name, drills), status, automatic, backup,
playbook (provision's and ping's recaps), journal."""

from drctl.views.automatic import render_auto_change, render_auto_status
from drctl.views.backup import render_backup, render_backups, render_restore, render_verify
from drctl.views.ha import (
    render_drill,
    render_name,
    render_rebuild,
    render_result,
    show_plan,
)
from drctl.views.journal import render_journal
from drctl.views.playbook import is_playbook_result, render_playbook
from drctl.views.status import render_status

__all__ = [
    "is_playbook_result",
    "render_auto_change",
    "render_auto_status",
    "render_backup",
    "render_backups",
    "render_drill",
    "render_journal",
    "render_name",
    "render_playbook",
    "render_rebuild",
    "render_restore",
    "render_result",
    "render_status",
    "render_verify",
    "show_plan",
]
