import json
import subprocess
import sys
from pathlib import Path

from operators.cleaning import EventGuard, GuardConfig, UserGuardState, WatermarkTracker, event_time, is_late
from operators.cleaning.pipeline import CleaningStage
from operators.records import Event, Rejection

REPO = Path(__file__).resolve().parents[2]
T = 1_700_000_000_000


def ev(event_id: str, ts: int, user: str = "u") -> Event:
    return Event(event_id, user, "i", "view", None, ts)


def test_duplicate_within_ttl_is_dropped_after_it_is_not() -> None:
    guard, state = EventGuard(GuardConfig(dedupe_ttl_ms=1000)), UserGuardState()
    assert guard.check(state, ev("a", T)) is None
    assert guard.check(state, ev("a", T + 500)) == "duplicate"
    assert guard.check(state, ev("b", T + 5000)) is None
    assert guard.check(state, ev("a", T + 5001)) is None        # "a" expired from the window


def test_dedupe_memory_is_bounded_per_user() -> None:
    guard, state = EventGuard(GuardConfig(max_dedupe_ids=100)), UserGuardState()
    for n in range(1000):
        guard.check(state, ev(f"e{n}", T + n))
    assert len(state.seen) <= 100


def test_rate_limit_uses_event_time_window() -> None:
    guard, state = EventGuard(GuardConfig(rate_limit=3, rate_window_ms=1000)), UserGuardState()
    verdicts = [guard.check(state, ev(f"e{n}", T + 100 * n)) for n in range(5)]
    assert verdicts == [None, None, None, "rate_limited", "rate_limited"]
    assert guard.check(state, ev("later", T + 1250)) is None     # the first two left the window
    assert len(state.accepted_ts) <= 4


def test_an_event_at_or_behind_the_watermark_is_late() -> None:
    # At the watermark counts as late: the feature windows downstream drop such rows.
    assert not is_late(T, T - 1) and is_late(T, T) and not is_late(T, None)


def test_event_time_never_runs_ahead_of_the_ingestion_clock() -> None:
    assert event_time(T + 120_000, T) == T          # a fast producer clock: clamped
    assert event_time(T - 3_600_000, T) == T - 3_600_000   # a slow one keeps its time (and is late)
    assert event_time(T + 5, None) == T + 5         # offline without an ingestion clock


def test_a_fast_clock_cannot_make_other_producers_late() -> None:
    # One event 4 min 59 s ahead (accepted, clamped), then everyone else's events at "now".
    stage = CleaningStage()
    line = '{{"event_id":"{}","user_id":"{}","item_id":"i","event_type":"view","ts":{}}}'
    skewed = stage.process(line.format("s", "fast", T + 299_000).encode(), now_ms=T)
    others = [stage.process(line.format(f"e{n}", f"u{n}", T + 70 * n).encode(), now_ms=T + 70 * n + 3)
              for n in range(100)]
    assert isinstance(skewed, Event) and skewed.ts == T
    assert all(isinstance(r, Event) for r in others)
    assert isinstance(stage.process(line.format("x", "fast", T + 400_000).encode(), now_ms=T), Rejection)


def test_a_slow_clock_makes_only_its_own_events_late() -> None:
    stage = CleaningStage()
    line = '{{"event_id":"{}","user_id":"{}","item_id":"i","event_type":"view","ts":{}}}'
    results = []
    for n in range(50):
        now = T + 100 * n
        results.append(stage.process(line.format(f"e{n}", f"u{n}", now).encode(), now_ms=now))
        results.append(stage.process(line.format(f"s{n}", "slow", now - 3_600_000).encode(), now_ms=now))
    reasons = [(r.user_id if isinstance(r, Event) else r.reason) for r in results]
    assert reasons[0::2] == [f"u{n}" for n in range(50)]
    assert reasons[1::2] == ["late"] * 50


def test_watermark_tracker_is_max_seen_minus_bound_minus_one_like_flink() -> None:
    w = WatermarkTracker(5000)
    assert w.watermark() is None
    for ts in (T, T + 9000, T + 3000):
        w.observe(ts)
    assert w.watermark() == T + 3999


def test_stage_routes_out_of_order_events_consistently() -> None:
    stage = CleaningStage(guard=GuardConfig(max_out_of_orderness_ms=1000))
    line = '{{"event_id":"{}","user_id":"{}","item_id":"i","event_type":"view","ts":{}}}'
    results = [stage.process(line.format(e, u, ts).encode(), now_ms=T + 10**6)
               for e, u, ts in [("a", "u1", T + 5000), ("b", "u2", T + 4500), ("c", "u3", T + 3000)]]
    assert isinstance(results[1], Event)                   # 500 ms out of order: within the bound
    assert isinstance(results[2], Rejection) and results[2].reason == "late"


def run_clean(tmp: Path, lines: list[bytes], *extra: str) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    src, out, dlq = tmp / "in.jsonl", tmp / "out.jsonl", tmp / "dlq.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    proc = subprocess.run([sys.executable, "-m", "jobs.clean", "--input", str(src), "--out", str(out),
                           "--dlq", str(dlq), "--now-ms", str(T), *extra], capture_output=True, text=True, cwd=REPO)
    return proc, out, dlq


def test_clean_command_writes_outputs_and_summary(tmp_path: Path) -> None:
    good = json.dumps({"event_id": "e1", "user_id": "u", "item_id": "i", "event_type": "view", "ts": T}).encode()
    proc, out, dlq = run_clean(tmp_path, [good, b"garbage", good, b"\xff"])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("in", "out", "dlq", "duplicates", "by_reason")} == {
        "in": 4, "out": 1, "dlq": 2, "duplicates": 1, "by_reason": {"not_json": 1, "not_utf8": 1}}
    assert out.read_bytes() == good + b"\n"
    dead = [json.loads(line) for line in dlq.read_text().splitlines()]
    assert [(d["reason"], d["source"]["offset"]) for d in dead] == [("not_json", 1), ("not_utf8", 3)]


def test_clean_command_fails_in_one_line_on_bad_arguments(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "jobs.clean", "--input", str(tmp_path / "missing.jsonl"),
                           "--out", str(tmp_path / "o"), "--dlq", str(tmp_path / "d")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "cannot read" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "jobs.clean", "--out", "x"], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.startswith("clean: ")
