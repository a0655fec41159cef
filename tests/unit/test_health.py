"""The model's health guard (operators/model/health.py, OnlineRanker._check_health): a drop
of the served-list hit rate or a non-finite parameter rolls the model back to its last good
state, deterministically, so a restart or a replay of the update log makes the same decisions."""

from __future__ import annotations

import dataclasses

import torch

from operators.model import Interaction, OnlineConfig, OnlineRanker
from operators.model.evaluation import list_quality
from operators.model.health import UNTESTED
from operators.model.updates import ModelUpdate, apply
from operators.records import Event, SourcePosition

HOUR = 3_600_000
GUARDED = OnlineConfig(batch_size=8, refit_every=200, learn_every=16, guard_every=100,
                       guard_short_ms=HOUR, guard_long_ms=6 * HOUR, guard_ratio=0.7, guard_min_tests=30)


def stream(n: int, bad_from: int | None = None) -> list[Interaction]:
    """Events a minute apart from 12 users over 30 items; every event tested; a hit one time in
    three, none from ``bad_from`` on (the model's lists gone bad)."""
    out, histories = [], {}
    for k in range(n):
        user, item = f"u{k % 12}", f"i{(k * 7) % 30}"
        history = histories.setdefault(user, [])
        hit = 0 if bad_from is not None and k >= bad_from else int(k % 3 == 0)
        out.append(Interaction(Event(f"e{k}", user, item, "click", None, k * 60_000, SourcePosition(0, k)),
                               tuple(history[-5:]), (), hit))
        history.append(item)
    return out


def learned_parts(ranker: OnlineRanker) -> str:
    """A digest of what the model has learned (not its positions, version or guard)."""
    state = ranker._state(guard=False)
    for key in ("progress", "learned_events", "observed", "pending", "pending_served"):
        del state[key]
    from operators.model.online import ModelState
    return ModelState(state).digest()


def test_a_drop_in_the_hit_rate_rolls_back_to_the_last_good_check() -> None:
    ranker = OnlineRanker(GUARDED)
    events = stream(700, bad_from=520)
    good: dict[int, str] = {}
    for n, it in enumerate(events, 1):
        ranker.learn([it])
        if n % 100 == 0:
            good[n] = learned_parts(ranker)
    (rollback,) = ranker.guard.rollbacks[:1]
    # the first check with 30+ bad tests in the last hour: 520 + 30 -> the check at 600
    assert (rollback.version, rollback.to_version) == (600, 500)
    assert "hit rate of the last 1 h 0.0000" in rollback.reason
    assert ranker.learned_events == 700                  # what was taken stays taken
    assert good[600] == good[500]                        # at 600 the model was the one of 500 again
    # a served list's novelty uses the popularity the model holds, not the events it has taken
    learned = ranker.learned_events - len(ranker.pending)
    assert ranker.counts.sum() < learned                 # the rollback forgot 100 learned events
    items = ranker.item_ids[:10]
    assert ranker.list_quality(items) == list_quality(ranker.indices(items), ranker.counts,
                                                      float(ranker.counts.sum()),
                                                      lambda idx: ranker.cooc.similarity(idx, ranker.counts))


def test_a_healthy_stream_never_rolls_back_and_the_guard_off_never_checks() -> None:
    ranker = OnlineRanker(GUARDED)
    for it in stream(700):
        ranker.learn([it])
    assert ranker.guard.rollbacks == [] and ranker.good_version == 700
    off = OnlineRanker(dataclasses.replace(GUARDED, guard_every=0))
    for it in stream(700, bad_from=300):
        off.learn([it])
    assert off.guard.rollbacks == [] and off._good is None


def test_a_non_finite_parameter_rolls_back_whatever_the_metric() -> None:
    ranker = OnlineRanker(GUARDED)
    events = stream(400)
    for it in events[:250]:
        ranker.learn([it])
    at_200 = ranker._good
    assert at_200 is not None and ranker.good_version == 200
    ranker.embedding.inp[0, 0] = float("nan")
    for it in events[250:300]:
        ranker.learn([it])
    (rollback,) = ranker.guard.rollbacks
    assert (rollback.version, rollback.to_version) == (300, 200)
    assert rollback.reason.startswith("non-finite parameters in emb_")
    assert bool(torch.isfinite(ranker.embedding.inp).all())
    for it in events[300:]:
        ranker.learn([it])
    assert ranker.guard.rollbacks == [rollback] and ranker.good_version == 400


def test_a_restore_at_any_point_makes_the_same_decisions_and_model() -> None:
    events = stream(700, bad_from=520)
    whole = OnlineRanker(GUARDED)
    for it in events:
        whole.learn([it])
    assert whole.guard.rollbacks
    for cut in (250, 500, 550, 600, 650):       # between checks, at one, after the rollback
        first = OnlineRanker(GUARDED)
        for it in events[:cut]:
            first.learn([it])
        resumed = OnlineRanker.restore(first.snapshot())
        assert resumed.digest() == first.digest()
        for it in events[cut:]:
            resumed.learn([it])
        assert resumed.digest() == whole.digest(), cut
        assert [r.as_dict() for r in resumed.guard.rollbacks] == [r.as_dict() for r in whole.guard.rollbacks]


def test_the_update_log_carries_each_test_so_a_replay_rolls_back_alike() -> None:
    events = stream(700, bad_from=520)
    direct = OnlineRanker(GUARDED)
    updates = []
    for it in events:
        direct.learn([it])
        updates.append(ModelUpdate("L", direct.learned_events, it.event, tuple(it.history), None, False, None,
                                   (), it.served))
    replayed = OnlineRanker(GUARDED)
    for u in updates:
        apply(replayed, ModelUpdate.from_json(u.to_json()))
    assert replayed.digest() == direct.digest() and replayed.guard.rollbacks
    # an update logged by an earlier release has no test: untested
    legacy = updates[0].to_json().replace(',"served":1', "").replace(',"served":0', "")
    assert '"served"' not in legacy and ModelUpdate.from_json(legacy).served == UNTESTED
