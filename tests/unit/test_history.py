from operators.model import UserHistory
from operators.records import Event, SourcePosition


def ev(item: str, offset: int, partition: int = 0) -> Event:
    return Event(f"e{offset}", "u", item, "view", None, offset, SourcePosition(partition, offset))


def test_recent_is_distinct_most_recent_last_and_capped() -> None:
    h = UserHistory()
    for n, item in enumerate(["a", "b", "a", "c", "d"]):
        h.apply(ev(item, n), max_recent=3)
    assert h.recent == ["a", "c", "d"]
    assert h.seen == {"a", "b", "c", "d"}


def test_replayed_offsets_are_skipped_per_partition() -> None:
    h = UserHistory()
    assert h.apply(ev("a", 5, partition=0), 10)
    assert not h.apply(ev("b", 5, partition=0), 10)
    assert h.apply(ev("b", 5, partition=1), 10)
    assert h.offsets == {0: 5, 1: 5}


def test_events_without_position_are_always_applied() -> None:
    h = UserHistory()
    e = Event("e", "u", "a", "view", None, 1)
    assert h.apply(e, 10) and h.apply(e, 10)


def test_snapshot_round_trip() -> None:
    h = UserHistory()
    h.apply(ev("a", 1), 10)
    assert UserHistory.restore(h.snapshot()) == h
