"""A/B variants (operators/model/variants.py): the spec, the users' assignment, and each
variant as its own model in the offline pipeline the job's numbers are checked against."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from jobs.config import JobConfig
from jobs.evaluate import online_metrics
from jobs.offline import OfflinePipeline
from jobs.sample import generate
from operators.model import OnlineConfig
from operators.model.variants import DEFAULT, Variant, assign, model_name, parse_variants
from tests.unit.test_updates import SMALL


def stream(n: int, users: int, items: int, seed: int) -> list[dict[str, object]]:
    return [{"event_id": f"e{k}", "user_id": f"u{u}", "item_id": f"i{i}", "event_type": "rating",
             "value": float(r), "ts": ts * 1000}
            for k, (u, i, r, ts) in enumerate(generate(n, users=users, items=items, seed=seed))]


SPEC = 'control=0.5,treatment=0.5:{"mmr_lambda": 0.7, "ranker_rate": 0.05}'


def test_the_spec_names_each_variant_its_share_and_its_model_changes() -> None:
    control, treatment = parse_variants(SPEC)
    assert (control.name, control.share, control.overrides) == ("control", 0.5, {})
    assert treatment.overrides == {"mmr_lambda": 0.7, "ranker_rate": 0.05}
    config = treatment.config(OnlineConfig(seed=3))
    assert (config.mmr_lambda, config.ranker_rate, config.seed) == (0.7, 0.05, 3)
    assert control.config(OnlineConfig(seed=3)) == OnlineConfig(seed=3)
    assert [model_name("m", v) for v in (control, treatment)] == ["m.control", "m.treatment"]
    assert parse_variants("") == [Variant(DEFAULT, 1.0)] and model_name("m", Variant(DEFAULT, 1.0)) == "m"


def test_a_file_holds_the_same_spec_as_text_or_json(tmp_path: Path) -> None:
    text, as_json = tmp_path / "v.txt", tmp_path / "v.json"
    text.write_text(SPEC + "\n")
    as_json.write_text(json.dumps({"control": {"share": 0.5},
                                   "treatment": {"share": 0.5, "mmr_lambda": 0.7, "ranker_rate": 0.05}}))
    assert parse_variants(f"@{text}") == parse_variants(f"@{as_json}") == parse_variants(SPEC)
    assert JobConfig(variants=f"@{as_json}").variant_list() == parse_variants(SPEC)


@pytest.mark.parametrize(("spec", "says"), [
    ("a=0.5", "add up to 0.5"),
    ("a=0.5,a=0.5", "appears twice"),
    ("a", "not NAME=SHARE"),
    ("1a=1", "not a variant name"),
    ("a=x", "not a number"),
    ("a=1.5,b=-0.5", "outside (0, 1]"),
    ('a=1:{"seed": 1.5}', "seed takes int"),
    ('a=1:{"mmr_lambda": "high"}', "mmr_lambda takes float"),
    ('a=1:{"dim": true}', "dim takes int"),
    ('a=1:{"nope": 1}', "not a model setting"),
    ('a=1:[1]', "must be a JSON object"),
    ('a=1:{bad', "not JSON"),
    ('{"a": 1}', "needs an object with a share"),
])
def test_a_bad_spec_says_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match="--variants: .*" + re.escape(says)):
        parse_variants(spec)


def test_assignment_is_stable_follows_the_shares_and_the_salt_reshuffles() -> None:
    variants = parse_variants("a=0.2,b=0.3,c=0.5")
    users = [f"user-{n}" for n in range(20_000)]
    first = [assign(u, variants).name for u in users]
    assert first == [assign(u, list(reversed(variants[::-1]))).name for u in users]    # a function of the id
    counts = Counter(first)
    for v in variants:      # 4 standard deviations of a binomial share
        sd = (v.share * (1 - v.share) / len(users)) ** 0.5
        assert abs(counts[v.name] / len(users) - v.share) < 4 * sd, counts
    salted = [assign(u, variants, salt="2026-12").name for u in users]
    moved = sum(a != b for a, b in zip(first, salted, strict=True)) / len(users)
    # independent draws disagree with probability 1 - sum(share^2) = 0.62
    assert 0.58 < moved < 0.66
    assert {assign(u, [Variant("only", 1.0)]).name for u in users[:100]} == {"only"}


def test_each_variant_is_its_own_model_that_learns_only_its_users() -> None:
    events = stream(800, users=40, items=60, seed=5)
    model = dataclasses.replace(SMALL, learn_every=16)
    payloads = [json.dumps(e).encode() for e in events]
    variants = tuple(parse_variants('a=0.5,b=0.5:{"mmr_lambda": 0.5}'))
    # without the window features, which count every user's events whatever their variant
    both = OfflinePipeline(model=model, variants=variants, window_features=False).run(payloads)
    assert [m.variant for m in both] == [assign(m.event.user_id, variants).name for m in both]
    mine = Counter(m.variant for m in both)
    assert set(mine) == {"a", "b"}
    assert sum(len(m.result.recommendations) > 0 for m in both) > 600      # lists to compare
    for v in variants:
        alone = [p for p, e in zip(payloads, events, strict=True) if assign(e["user_id"], variants).name == v.name]
        # a variant answers as a model fed only its own users' events would
        solo = OfflinePipeline(model=v.config(model), window_features=False).run(alone)
        assert [[r.item_id for r in m.result.recommendations] for m in solo] == \
               [[r.item_id for r in m.result.recommendations] for m in both if m.variant == v.name]
        assert mine[v.name] == len(alone)


def test_offline_metrics_come_per_variant() -> None:
    events = stream(600, users=40, items=60, seed=5)
    hour = 3_600_000
    windows = online_metrics(events, [("tumble", hour, hour)], model=SMALL,
                             variants=parse_variants("a=0.5,b=0.5"))
    ab = [w for w in windows if w["kind"] == "ab"]
    windows = [w for w in windows if w["kind"] == "tumble"]
    assert {w["variant"] for w in windows} == {"a", "b"}
    # one A/B record per window: b against a, on the windows' own counts
    assert {w["window_start"] for w in ab} == {w["window_start"] for w in windows}
    assert all((r["variant"], r["control"]) == ("b", "a") for r in ab)
    assert sum(r["tested"] for r in ab) == sum(w["tested"] for w in windows if w["variant"] == "b")
    assert sum(r["control_tested"] for r in ab) == sum(w["tested"] for w in windows if w["variant"] == "a")
    single = online_metrics(events, [("tumble", hour, hour)], model=SMALL)
    assert {w["variant"] for w in single} == {DEFAULT} and all(w["kind"] == "tumble" for w in single)
    # the same events in both: the variants' windows add up to the single model's counts
    assert sum(w["events"] for w in windows) == sum(w["events"] for w in single)


def test_the_vectorised_evaluation_refuses_variants() -> None:
    with pytest.raises(ValueError, match="variants need recommend=True"):
        OfflinePipeline(recommend=False, variants=tuple(parse_variants("a=0.5,b=0.5")))
