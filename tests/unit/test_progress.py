"""What the shared model already holds, when events reach it in event-time order."""

from operators.model.progress import NO_WRITER, LearnedEvents
from operators.records import Event, SourcePosition


def ev(offset: int, ts: int, partition: int = 0) -> Event:
    return Event(f"e{offset}", "u", "i", "view", None, ts, SourcePosition(partition, offset))


def test_an_event_with_a_lower_offset_but_later_time_is_not_taken_for_learned() -> None:
    # Offsets 1 and 2 arrive out of time order: the model learns 2 (ts 100) first.
    p = LearnedEvents()
    p.add(ev(2, ts=100))
    assert not p.contains(ev(1, ts=200))     # "every offset up to 2" would have skipped it
    assert p.contains(ev(2, ts=100))


def test_the_watermark_covers_every_earlier_event_and_forgets_positions_behind_it() -> None:
    p = LearnedEvents()
    for offset, ts in [(0, 10), (1, 30), (2, 20)]:
        p.add(ev(offset, ts))
    p.advance(25)
    assert p.above == {(0, 1): (30, NO_WRITER)}
    assert p.contains(ev(0, 10)) and p.contains(ev(2, 20)) and p.contains(ev(1, 30))
    assert not p.contains(ev(3, 26))
    p.advance(5)                              # watermarks never go back
    assert p.watermark == 25


def test_state_round_trip_and_offsets_for_listings() -> None:
    p = LearnedEvents()
    for offset, ts, part in [(5, 10, 0), (3, 40, 1), (4, 12, 0)]:
        p.add(ev(offset, ts, part))
    p.advance(11)
    restored = LearnedEvents.from_state(p.to_state())
    assert restored == p
    assert restored.offsets == {0: 5, 1: 3}


def test_offline_events_have_no_position_and_are_always_learned() -> None:
    p = LearnedEvents(floor=100)
    e = Event("e", "u", "i", "view", None, 50)
    assert not p.contains(e)


def test_each_writer_is_judged_by_its_own_watermark_and_its_positions_kept_until_it_passes_them() -> None:
    p = LearnedEvents()
    p.record(100, (0, 2))
    p.record(None, (1, 2))                    # subtask 1's first update, before its first watermark
    p.add(ev(1, 150), (1, 2))
    p.record(300, (0, 2))
    # Subtask 0 has passed 200; subtask 1 has not: an event at 200 reaching it may still be queued.
    assert p.contains(ev(7, 200), (0, 2)) and not p.contains(ev(7, 200), (1, 2))
    assert p.above == {(0, 1): (150, 1)}, "subtask 0's watermark does not forget subtask 1's positions"
    assert p.contains(ev(1, 150), (1, 2))
    p.record(120, (1, 2))
    assert p.above == {(0, 1): (150, 1)} and p.contains(ev(1, 150), (1, 2))
    p.record(160, (1, 2))
    assert p.above == {} and p.contains(ev(1, 150), (1, 2)) and p.watermark == 300


def test_a_new_parallelism_judges_by_the_newest_old_watermark_and_keeps_the_positions_above_it() -> None:
    p = LearnedEvents()
    p.record(500, (0, 2))
    p.record(200, (1, 2))
    p.add(ev(3, 600), (0, 2))
    # Users moved between subtasks: restored from a savepoint (aligned), every event at or
    # before any old writer's watermark had reached its subtask before it.
    assert p.contains(ev(9, 450), (2, 3)) and not p.contains(ev(9, 550), (2, 3)) and p.contains(ev(3, 600), (2, 3))
    p.record(250, (0, 3))                     # the first update at parallelism 3
    assert (p.floor, p.writers, p.parallelism) == (500, {0: 250}, 3)
    assert p.above == {(0, 3): (600, NO_WRITER)}
    p.record(700, (0, 3))                     # subtask 0 of 3 is not subtask 0 of 2: the position stays
    assert p.above == {(0, 3): (600, NO_WRITER)} and p.contains(ev(3, 600), (1, 3))
    assert p.contains(ev(9, 650), (0, 3)) and not p.contains(ev(9, 650), (1, 3))


def test_the_writers_survive_a_snapshot_and_older_snapshots_still_load() -> None:
    p = LearnedEvents()
    p.record(300, (0, 2))
    p.record(100, (1, 2))
    p.add(ev(4, 200), (1, 2))
    restored = LearnedEvents.from_state(p.to_state())
    assert restored == p and restored.contains(ev(8, 250), (0, 2)) and not restored.contains(ev(8, 250), (1, 2))
    old = {"watermark": 90, "above": [[0, 4, 200]], "offsets": {"0": 4}}      # saved before writers
    assert LearnedEvents.from_state(old) == LearnedEvents(90, {(0, 4): (200, NO_WRITER)}, {0: 4})
