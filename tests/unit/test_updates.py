"""The update log redoes learning exactly: snapshot + logged updates == the uninterrupted model."""

from __future__ import annotations

import numpy as np
import pytest

from jobs.sample import generate
from operators.features.windows import WindowFeatureBuilder, WindowFeatures
from operators.model import OnlineConfig, OnlineRanker
from operators.model.history import UserState
from operators.model.ranker import CONTEXT
from operators.model.step import ModelStep
from operators.model.updates import ModelUpdate, replay
from operators.records import Event, SourcePosition

SMALL = OnlineConfig(batch_size=16, refit_every=300, fusion_every=2)


_WINDOWS: dict[Event, WindowFeatures] = {}     # each streamed event's window features, from its whole stream


def stream(n: int = 1_500, users: int = 60, items: int = 120, seed: int = 4) -> list[Event]:
    events = [Event(f"e{k}", f"u{u}", f"i{i}", "rating", float(r), ts * 1000, SourcePosition(0, k))
              for k, (u, i, r, ts) in enumerate(generate(n, users=users, items=items, seed=seed))]
    builder = WindowFeatureBuilder()
    for e in events:
        builder.add(e)
    _WINDOWS.update((e, builder.features(e)) for e in events)
    return events


def run(events: list[Event], ranker: OnlineRanker, users: dict[str, UserState] | None = None,
        lineage: str = "L") -> tuple[list[ModelUpdate], dict[str, UserState]]:
    step = ModelStep(ranker, k=10, test_every_event=False, lineage=lineage)
    users = {} if users is None else users
    updates = []
    for e in events:
        result = step.process(e, users.setdefault(e.user_id, UserState()), _WINDOWS[e], watermark=e.ts - 5_000)
        if result.update is not None:
            updates.append(result.update)
    return updates, users


def same_model(a: OnlineRanker, b: OnlineRanker) -> None:
    assert a.learned_events == b.learned_events and a.observed == b.observed
    assert a.item_ids == b.item_ids
    np.testing.assert_array_equal(a.cooc.neighbours.ids, b.cooc.neighbours.ids)
    np.testing.assert_array_equal(a.cooc.neighbours.counts, b.cooc.neighbours.counts)
    np.testing.assert_array_equal(a.regression.weights, b.regression.weights)
    np.testing.assert_array_equal(a.embedding.inp.numpy(), b.embedding.inp.numpy())
    np.testing.assert_array_equal(a.fusion.blend_hits, b.fusion.blend_hits)
    np.testing.assert_array_equal(a.learned.weights.numpy(), b.learned.weights.numpy())
    assert a.progress == b.progress
    for history in (["i1", "i7"], ["i3"], []):
        assert a.recommend(history, 10) == b.recommend(history, 10)


def test_snapshot_plus_logged_updates_equals_the_uninterrupted_model() -> None:
    events = stream()
    whole = OnlineRanker(SMALL)
    updates, _ = run(events, whole)
    assert len(updates) == len(events) and [u.seq for u in updates] == list(range(1, len(events) + 1))
    assert any(u.hits is not None for u in updates) and any(u.observed for u in updates)
    # The situations the ranker learns with: session depth and the window features both vary.
    for part in ("session", "user long", "last item short"):
        assert len({u.situation[CONTEXT.index(part)] for u in updates if u.situation}) > 3

    cut = 700            # a snapshot at event 700; the log covers everything after it
    early = OnlineRanker(SMALL)
    run(events[:cut], early)
    restored = OnlineRanker.restore(early.snapshot(), SMALL)
    logged = [ModelUpdate.from_json(u.to_json()) for u in updates]        # through Kafka and back
    assert replay(restored, logged, "L") == len(events) - cut
    same_model(restored, whole)


def test_replay_ignores_other_lineages_and_stops_at_a_gap() -> None:
    events = stream(400)
    updates, _ = run(events, OnlineRanker(SMALL))
    foreign = [ModelUpdate("other", u.seq, u.event, u.history, u.watermark, u.observed, u.hits) for u in updates]
    assert replay(OnlineRanker(SMALL), foreign, "L") == 0
    ranker = OnlineRanker(SMALL)
    assert replay(ranker, updates[:100] + updates[150:], "L") == 100   # the gap stops it
    assert ranker.learned_events == 100
    # Entries the ranker already holds (a redelivered prefix) are passed over.
    assert replay(ranker, updates[:120], "L") == 20


def _snapshot_at(events: list[Event], n: int) -> bytes:
    ranker = OnlineRanker(SMALL)
    run(events[:n], ranker)
    return ranker.snapshot()


@pytest.mark.parametrize("snapshot_at", [500, 900])
def test_after_a_failure_the_replayed_source_continues_the_same_model(snapshot_at: int) -> None:
    """The attempt fails at event 950; its last checkpoint was at event 800, so the log holds
    updates 1..800 and the source replays from 800 with the user state of 800. The newest
    snapshot is behind the checkpoint (500: the log fills the gap) or ahead of it (900: the
    replayed events it holds update the users' state but not the shared model again)."""
    events = stream(1_200)
    whole = OnlineRanker(SMALL)
    updates, _ = run(events, whole)

    _, users_at_checkpoint = run(events[:800], OnlineRanker(SMALL))
    restarted = OnlineRanker.restore(_snapshot_at(events, snapshot_at), SMALL)
    assert replay(restarted, updates[:800], "L") == max(0, 800 - snapshot_at)
    replayed, _ = run(events[800:], restarted, users_at_checkpoint)
    assert [u.seq for u in replayed] == list(range(max(800, snapshot_at) + 1, len(events) + 1))
    same_model(restarted, whole)


def test_a_topic_not_yet_known_to_the_broker_is_asked_again() -> None:
    from confluent_kafka import KafkaError, KafkaException

    from operators.model.update_log import _topic_config

    class Admin:
        """Answers UNKNOWN_TOPIC_OR_PART twice, as a broker does right after the topic's creation."""

        def __init__(self, unknown: int, error: int = KafkaError.UNKNOWN_TOPIC_OR_PART) -> None:
            self.left, self.error, self.calls = unknown, error, 0

        def describe_configs(self, resources: list, request_timeout: float) -> dict:
            from concurrent.futures import Future
            self.calls += 1
            future: Future = Future()
            if self.left > 0:
                self.left -= 1
                future.set_exception(KafkaException(KafkaError(self.error)))
            else:
                future.set_result({"cleanup.policy": "delete"})
            return {resources[0]: future}

    admin = Admin(unknown=2)
    assert _topic_config(admin, "log", timeout=5) == {"cleanup.policy": "delete"}  # type: ignore[arg-type]
    assert admin.calls == 3
    with pytest.raises(KafkaException):  # another error is not retried
        _topic_config(Admin(unknown=1, error=KafkaError.TOPIC_AUTHORIZATION_FAILED), "log", 5)  # type: ignore[arg-type]
    with pytest.raises(KafkaException):  # nor is the unknown topic past the timeout
        _topic_config(Admin(unknown=10**6), "log", timeout=0.3)  # type: ignore[arg-type]


def test_the_replicas_log_reader_takes_records_that_follow_an_end_of_partition_in_one_batch() -> None:
    """consume() may return the end-of-partition event and records committed just after it in
    one batch; the consumer has then moved past those records, so dropping them would make the
    replica skip updates for good."""
    from confluent_kafka import KafkaError

    from operators.model.update_log import KafkaLogTail

    class Msg:
        def __init__(self, offset: int, update: ModelUpdate | None) -> None:
            self._offset, self._update = offset, update

        def error(self) -> KafkaError | None:
            return KafkaError(KafkaError._PARTITION_EOF) if self._update is None else None

        def offset(self) -> int:
            return self._offset

        def value(self) -> bytes:
            assert self._update is not None
            return self._update.to_json().encode()

    updates = [ModelUpdate("L", n, e, (), None, False, None) for n, e in enumerate(stream(4), start=1)]

    class Consumer:
        def __init__(self) -> None:
            self.batches = [[Msg(0, updates[0]), Msg(1, None), Msg(1, updates[1]), Msg(2, updates[2])],
                            [Msg(4, updates[3])], []]

        def consume(self, num_messages: int, timeout: float) -> list[Msg]:
            return self.batches.pop(0) if self.batches else []

    tail = KafkaLogTail.__new__(KafkaLogTail)
    tail.topic, tail.read_timeout_s, tail._position = "log", 5.0, 0
    tail.committed = Consumer()  # type: ignore[assignment]
    first = tail.read(0, wait=False)
    assert [o for o, _ in first] == [0, 1, 2], "records after the end-of-partition event were dropped"
    assert [u.seq for _, u in first] == [1, 2, 3]
    assert [o for o, _ in tail.read(3, wait=False)] == [4]
