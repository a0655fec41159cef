"""Typed records passed between the stages (contracts in DESIGN.md §5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal["view", "click", "add_to_cart", "purchase", "rating"]
EVENT_TYPES: frozenset[str] = frozenset({"view", "click", "add_to_cart", "purchase", "rating"})


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """Where and when a record came into Kafka; -1 when unknown (e.g. offline files)."""

    partition: int = -1
    offset: int = -1
    timestamp: int = -1     # the Kafka record's timestamp, epoch ms: the job's latency is measured from it


@dataclass(frozen=True, slots=True)
class Event:
    """A validated interaction: the output of the cleaning stage."""

    event_id: str
    user_id: str
    item_id: str
    event_type: str
    value: float | None
    ts: int
    position: SourcePosition = SourcePosition()
    # With pseudonymisation on (security.Pseudonymizer), ``user_id`` is the pseudonym and this
    # the original id sealed, which only the output record opens; "" when it is off.
    reply_to: str = ""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """``{"heartbeat_ts": <epoch ms>}``: the producer's event-time clock, not an interaction.

    Event-time stages hand an event on only once the watermark has passed it, so a stream that
    goes quiet would hold its last events back; a heartbeat moves the watermark instead."""

    ts: int
    position: SourcePosition = SourcePosition()


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record the cleaning stage refused; it goes to the dead-letter topic as JSON."""

    reason: str
    message: str
    payload: bytes
    position: SourcePosition = SourcePosition()
    details: dict[str, Any] = field(default_factory=dict)   # machine-readable, by reason


@dataclass(frozen=True, slots=True)
class Recommendation:
    item_id: str
    score: float
    reason: str                         # the component that contributed most
    related_item: str | None = None     # the user's recent item it relates to, where one does
    related_title: str | None = None    # that item's title, when item metadata is loaded
    features: tuple[str, ...] = ()      # the learned ranker's features that added most to the score (when it leads)


# A recommendation record's test-then-learn evaluation (operators/model/evaluation.py): the
# record's ``evaluation`` JSON has these fields (and ``rank``), and the model's output row
# carries them as typed columns for the metrics SQL: (name, SQL type).
EVALUATION_COLUMNS = [("tested", "INT"), ("hit", "INT"), ("ndcg", "DOUBLE"), ("rr", "DOUBLE"), ("listed", "INT"),
                      ("diversity", "DOUBLE"), ("novelty", "DOUBLE"), ("lagged", "INT"), ("model_lag_ms", "BIGINT"),
                      ("ranked", "INT"), ("auc", "DOUBLE"), ("catalogue", "INT"), ("timed", "INT"),
                      ("latency_ms", "BIGINT")]
