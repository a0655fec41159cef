import json
import subprocess
import sys
from pathlib import Path

from operators.cleaning import EventGuard, GuardConfig, UserGuardState, WatermarkTracker
from operators.cleaning.pipeline import CleaningStage
from operators.records import Event, Rejection

REPO = Path(__file__).resolve().parents[2]
T = 1_700_000_000_000


def ev(event_id: str, ts: int, user: str = "u") -> Event:
    return Event(event_id, user, "i", "view", None, ts)


def test_duplicate_within_ttl_is_dropped_after_it_is_not() -> None:
    guard, state = EventGuard(GuardConfig(dedupe_ttl_ms=1000)), UserGuardState()
    assert guard.check(state, ev("a", T), None) is None
    assert guard.check(state, ev("a", T + 500), None) == "duplicate"
    assert guard.check(state, ev("b", T + 5000), None) is None
    assert guard.check(state, ev("a", T + 5001), None) is None        # "a" expired from the window


def test_dedupe_memory_is_bounded_per_user() -> None:
    guard, state = EventGuard(GuardConfig(max_dedupe_ids=100)), UserGuardState()
    for n in range(1000):
        guard.check(state, ev(f"e{n}", T + n), None)
    assert len(state.seen) <= 100


def test_rate_limit_uses_event_time_window() -> None:
    guard, state = EventGuard(GuardConfig(rate_limit=3, rate_window_ms=1000)), UserGuardState()
    verdicts = [guard.check(state, ev(f"e{n}", T + 100 * n), None) for n in range(5)]
    assert verdicts == [None, None, None, "rate_limited", "rate_limited"]
    assert guard.check(state, ev("later", T + 1250), None) is None     # the first two left the window
    assert len(state.accepted_ts) <= 4


def test_an_event_at_or_behind_the_watermark_is_late() -> None:
    # At the watermark counts as late: the feature windows downstream drop such rows.
    guard, state = EventGuard(GuardConfig()), UserGuardState()
    assert guard.check(state, ev("a", T), watermark=T - 1) is None
    assert guard.check(state, ev("b", T), watermark=T) == "late"


def test_state_snapshot_round_trip_decides_the_same() -> None:
    guard, state = EventGuard(GuardConfig(rate_limit=2, rate_window_ms=1000)), UserGuardState()
    guard.check(state, ev("a", T), None)
    restored = UserGuardState.restore(state.snapshot())
    assert [guard.check(s, ev("a", T + 1), None) for s in (state, restored)] == ["duplicate", "duplicate"]
    assert [guard.check(s, ev("b", T + 2), None) for s in (state, restored)] == [None, None]
    assert [guard.check(s, ev("c", T + 3), None) for s in (state, restored)] == ["rate_limited"] * 2


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
