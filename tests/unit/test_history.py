from operators.model import UserHistory, UserState
from operators.records import Event


def ev(item: str, n: int) -> Event:
    return Event(f"e{n}", "u", item, "view", None, n)


def test_recent_is_distinct_most_recent_last_and_capped() -> None:
    h = UserHistory()
    for n, item in enumerate(["a", "b", "a", "c", "d"]):
        h.apply(ev(item, n), max_recent=3)
    assert h.recent == ["a", "c", "d"]
    assert h.seen == {"a", "b", "c", "d"}


def test_user_state_round_trips_history_and_activity() -> None:
    state = UserState()
    for n, item in enumerate(["a", "b"]):
        state.history.apply(ev(item, n), 20)
        state.activity.observe(item, "view", n, gap_ms=1000)
    restored = UserState.restore(state.snapshot())
    assert restored == state
    assert restored.activity.observe("c", "view", 5, 1000) == state.activity.observe("c", "view", 5, 1000)


def test_restore_refuses_foreign_state() -> None:
    import pickle

    import pytest

    with pytest.raises(TypeError):
        UserState.restore(pickle.dumps((["a"], {"a"})))
