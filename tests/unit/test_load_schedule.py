"""When the load loop reads conntrack (app/reconcile/observe.py: LoadSchedule)."""

from __future__ import annotations

from app.reconcile.observe import LoadSchedule

MARKS = frozenset({5, 6})


def run(
    schedule: LoadSchedule, ticks: int, entries: int | None, active: dict[int, int]
) -> list[int]:
    """Ticks (every 2 s) at which a sample was taken."""
    taken = []
    for tick in range(ticks):
        now = 2.0 * tick
        if schedule.due(now, MARKS, entries):
            schedule.sampled(now, MARKS, entries, active)
            taken.append(tick)
    return taken


def test_unchanged_samples_back_off_to_one_in_eight() -> None:
    schedule = LoadSchedule(2.0)
    assert run(schedule, 40, 3, {5: 1}) == [0, 1, 3, 7, 15, 23, 31, 39]


def test_a_change_in_the_table_or_the_marks_samples_at_once() -> None:
    schedule = LoadSchedule(2.0)
    run(schedule, 20, 3, {5: 1})
    assert schedule.due(40.0, MARKS, 4)  # a connection came or went
    assert schedule.due(40.0, frozenset({5}), 3)  # a request changed the load farms
    assert schedule.due(40.0, MARKS, None)  # table size unknown: always sample
    assert not schedule.due(40.0, MARKS, 3)


def test_a_different_sample_resets_the_interval() -> None:
    schedule = LoadSchedule(2.0)
    run(schedule, 20, 3, {5: 1})
    assert schedule.sampled(40.0, MARKS, 3, {5: 2})
    assert schedule.due(42.0, MARKS, 3)
    assert not schedule.sampled(42.0, MARKS, 3, {5: 2})
