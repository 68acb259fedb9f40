"""A short fault campaign inside `make test` (issue #34; docs/design-campaign.md): the
seed's faults drawn and applied on the one-site lab with automatic failover armed, two
clients writing through the VIP, and the set-workload checker's verdict, as `make
campaign` gives it. The seed is fixed, so the same faults come every run (their effects
depend on the cluster's timing); `make campaign` runs the long ones."""

import pytest

from drctl_lab import lab as labmod
from drctl_lab.faults import by_kind
from drctl_lab.run_campaign import Campaign, headline, write_report
from tests.integration.conftest import ROOT, restore_snapshot

SEED = 14
DURATION_S = 150
# the faults SEED draws in DURATION_S on this lab (drctl_lab.faults.draw): a test that
# meets another schedule is not the test it says it is
FAULTS = {"drop-in": 1, "isolate": 2, "kill-keepalived": 1, "kill-postgres": 1,
          "kill-repmgrd": 1}
ARMED = "auto-armed"  # test_11's snapshot of the armed cluster


@pytest.fixture(scope="module")
def armed(provisioned_lab):
    """pg1 primary, pg2 streaming, automatic failover armed: test_11's snapshot where this
    lab keeps it (lane b runs this module after test_11), else the provisioned one, which
    the campaign arms itself (`drctl auto enable`)."""
    kept = {s["name"] for s in labmod.snapshots() if s["complete"] and s["current_image"]}
    restore_snapshot(ARMED if ARMED in kept else None)
    return provisioned_lab


def test_a_short_campaign_loses_nothing_without_consent_and_never_two_writers(armed):
    campaign = Campaign(SEED, DURATION_S, writers=2)
    assert by_kind(campaign.schedule) == FAULTS, [f.as_dict() for f in campaign.schedule]
    report = campaign.run()
    stem = write_report(report, ROOT / "test-artifacts" / "campaign")
    said = f"{headline(report)}\nthe whole report: {stem}.json and .html"
    not_applied = [e["what"] for e in report["events"] if str(e["what"]).startswith("could not")]
    assert not not_applied, f"{not_applied}\n{said}"
    assert report["acknowledged"] > 1000, said
    # the checker's verdict: every acknowledged write on the final primary but those an
    # automatic promotion's standing consent covered, nothing that nobody wrote, never
    # two timelines acknowledging at once
    assert report["lost"] == 0, said
    assert report["unexpected"] == 0, said
    assert report["overlap_s"] == 0, said
    assert report["healthy_at_end"], said
    assert report["ok"], said
