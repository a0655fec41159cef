import json
from pathlib import Path

import pytest

from jobs.config import JobConfig
from jobs.replay import read_events

ML100K = Path(__file__).resolve().parents[3] / "shared" / "data" / "ml-100k" / "u.data"


def test_jsonl_sorted_by_ts_ties_keep_line_order_bad_lines_kept(tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join([json.dumps({"event_id": "b", "ts": 5}), "garbage",
                            json.dumps({"event_id": "a", "ts": 1}), json.dumps({"event_id": "c", "ts": 5})]))
    events = read_events(f)
    assert [e if isinstance(e, str) else e["event_id"] for e in events] == ["garbage", "a", "b", "c"]


def test_movielens_csv_layout(tmp_path: Path) -> None:
    f = tmp_path / "ratings.csv"
    f.write_text("userId,movieId,rating,timestamp\n1,10,4.0,20\n2,11,3.5,10\n")
    events = read_events(f, limit=1)
    assert events == [{"event_id": "ml-2-11-10", "user_id": "2", "item_id": "11", "event_type": "rating",
                       "value": 3.5, "ts": 10_000}]


def test_amazon_ratings_layout_and_a_bad_row(tmp_path: Path) -> None:
    f = tmp_path / "Magazine_Subscriptions.csv"
    f.write_text("B00005N7PH,A1EZ,5.0,1004054400\nB00005NIOA,A16G,4.0,1004000000\n")
    assert read_events(f, "amazon-ratings") == [
        {"event_id": "az-A16G-B00005NIOA-1004000000", "user_id": "A16G", "item_id": "B00005NIOA",
         "event_type": "rating", "value": 4.0, "ts": 1_004_000_000_000},
        {"event_id": "az-A1EZ-B00005N7PH-1004054400", "user_id": "A1EZ", "item_id": "B00005N7PH",
         "event_type": "rating", "value": 5.0, "ts": 1_004_054_400_000}]
    f.write_text("B00005N7PH,A1EZ,5.0,1004054400\nB00005NIOA,A16G,4.0\n")
    with pytest.raises(ValueError, match="line 2: 3 fields"):
        read_events(f, "amazon-ratings")


@pytest.mark.skipif(not ML100K.is_file(), reason="MovieLens 100K not present at ../shared/data/ml-100k")
def test_movielens_100k_is_in_time_order() -> None:
    events = read_events(ML100K)
    assert len(events) == 100_000
    assert all(a["ts"] <= b["ts"] for a, b in zip(events, events[1:], strict=False))  # type: ignore[index]


def test_config_flags_beat_env_beat_defaults() -> None:
    cfg = JobConfig.from_args(["--k", "5", "--input-topic", "t1"],
                              env={"STREAMREC_K": "7", "STREAMREC_KEYSPACE": "ks1"})
    assert (cfg.k, cfg.input_topic, cfg.keyspace, cfg.output_topic) == (5, "t1", "ks1", "recommendations")
    assert cfg.tx_prefix == "streamrec-recommendations"
