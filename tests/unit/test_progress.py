"""What the shared model already holds, when events reach it in event-time order."""

from operators.model.progress import LearnedEvents
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
    assert p.above == {(0, 1): 30}
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
    p = LearnedEvents(watermark=100)
    e = Event("e", "u", "i", "view", None, 50)
    assert not p.contains(e)
