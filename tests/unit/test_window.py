import pytest

from operators.features import SlidingWindowCounter

MIN = 60_000
HOUR = 60 * MIN


def test_counts_only_the_window_ending_at_the_event() -> None:
    c = SlidingWindowCounter(HOUR, MIN)
    assert c.observe(0) == 1
    assert c.observe(10 * MIN) == 2
    assert c.observe(HOUR + 5 * MIN) == 2          # the event at 0 left the window
    assert c.observe(3 * HOUR) == 1


def test_out_of_order_event_never_counts_later_events() -> None:
    c = SlidingWindowCounter(HOUR, MIN)
    c.observe(30 * MIN)
    c.observe(40 * MIN)
    assert c.observe(5 * MIN) == 1                  # the later two are not "as of" 5 min


def test_old_buckets_are_pruned_so_state_stays_bounded() -> None:
    c = SlidingWindowCounter(HOUR, MIN)
    for t in range(0, 10 * HOUR, MIN):
        c.observe(t)
    assert len(c.buckets) <= HOUR // MIN


def test_snapshot_restore_continues_identically() -> None:
    a = SlidingWindowCounter(HOUR, MIN)
    for t in (0, MIN, 2 * MIN):
        a.observe(t)
    b = SlidingWindowCounter.restore(a.snapshot(), HOUR, MIN)
    assert [a.observe(t) for t in (3 * MIN, HOUR)] == [b.observe(t) for t in (3 * MIN, HOUR)]


@pytest.mark.parametrize(("window", "slide"), [(0, 1), (10, 0), (10, 3)])
def test_bad_window_settings_are_refused(window: int, slide: int) -> None:
    with pytest.raises(ValueError):
        SlidingWindowCounter(window, slide)
