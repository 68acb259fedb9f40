"""The fault campaign's set-workload checker (drctl_lab.checker): lost, unexpected,
recovered and overlapping acknowledgements, judged from the clients' records alone."""

from __future__ import annotations

import pytest

from drctl_lab.checker import Attempt, Consent, check, overlaps, timeline_of


def acked(i: int, at: float, timeline: int = 1) -> Attempt:
    return Attempt(i, at - 0.01, at, True, timeline)


def failed(i: int, at: float) -> Attempt:
    return Attempt(i, at - 1.0, at, False)


def test_a_run_that_keeps_every_acknowledged_write_passes():
    attempts = [acked(1, 1.0), acked(2, 2.0), failed(3, 3.0), acked(4, 4.0, timeline=2)]
    v = check(attempts, present={1, 2, 4})
    assert v.ok and v.problems() == []
    assert (v.attempted, v.acknowledged, v.lost, v.unexpected, v.recovered) == (4, 3, (), (),
                                                                                 ())
    assert v.as_dict()["overlap_s"] == 0


def test_an_acknowledged_write_missing_from_the_final_primary_is_lost():
    v = check([acked(1, 1.0), acked(2, 2.0)], present={1})
    assert not v.ok and v.lost == (2,)
    assert v.problems() == ["1 acknowledged writes lost without consent (ids 2)"]


def test_a_loss_counts_as_consented_only_inside_the_window_the_operator_was_told():
    consent = Consent(at=10.0, window_s=2.0, who="failover --allow-data-loss")
    attempts = [acked(1, 7.0), acked(2, 8.5), acked(3, 9.9), acked(4, 10.5)]
    v = check(attempts, present=set(), consents=[consent])
    # 2 and 3 were acknowledged within the 2 s before the consent: what it put at stake;
    # 1 is older than the window it named, 4 came after it: neither was consented to
    assert v.lost_with_consent == (2, 3) and v.lost == (1, 4) and not v.ok


def test_a_write_present_that_nobody_attempted_is_unexpected():
    v = check([acked(1, 1.0)], present={1, 99})
    assert not v.ok and v.unexpected == (99,)
    assert "1 writes present that no client attempted (ids 99)" in v.problems()


def test_a_failed_attempt_that_committed_after_all_is_recovered_not_a_failure():
    v = check([acked(1, 1.0), failed(2, 2.0)], present={1, 2})
    assert v.ok and v.recovered == (2,)


def test_two_timelines_acknowledging_at_once_is_an_overlap():
    # a failover: timeline 1 stops acknowledging at 5 s, timeline 2 starts at 7 s
    clean = [acked(1, 1.0), acked(2, 5.0), acked(3, 7.0, 2), acked(4, 9.0, 2)]
    assert overlaps(clean) == [] and check(clean, present={1, 2, 3, 4}).ok
    # two primaries: the old one still acknowledges at 8.5 s, after the new one began at 7
    split = [*clean, acked(5, 8.5, 1)]
    v = check(split, present={1, 2, 3, 4, 5})
    assert not v.ok and v.overlap_s == pytest.approx(1.5)
    assert v.overlaps[0]["older"] == 1 and v.overlaps[0]["newer"] == 2
    assert v.problems() == ["timelines 1 and 2 both acknowledged writes for 1.500 s"]


def test_the_timeline_comes_from_the_wal_file_name_the_insert_returns():
    assert timeline_of("000000020000000000000005") == 2
    assert timeline_of("0000000A00000001000000FF") == 10
    with pytest.raises(ValueError):
        timeline_of("0/5000000")
