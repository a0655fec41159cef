"""The model's update log: one record per learned event, enough to redo its effect exactly.

Flink checkpoints cover the source offsets and the keyed state, but the shared ranker lives in
the model operator's memory and reaches Cassandra only with each snapshot. After a failure Flink
rewinds the source to the last checkpoint, which is usually *after* the newest snapshot: the
events in between would be in the users' keyed state but in no copy of the ranker. So the
operator also writes every learned event to a Kafka topic through an exactly-once sink, whose
transactions commit with the checkpoints. On restart it loads the newest complete snapshot and
applies the committed updates after it: the ranker then stands exactly where the checkpoint
does, and the replayed source continues from there (DESIGN.md §4).

An update carries what shaped learning (it is logged when the ranker takes the event into its
pending batch, see online.py): the event, the user's recent items before it and the situation
its list was served in, the model's input watermark (and, from a replica, which subtask at
which parallelism proposed it: progress.py judges replayed events by their own subtask's
watermark), and the fusion's measurement of the "test" half (a row of hits), so ``apply``
reproduces ``ModelStep`` bit for bit without recomputing any score.

Updates belong to a *lineage*: the chain of states that started from one empty model, one
rollback or one change of parallelism. ``seq`` is the ranker's ``learned_events`` after the
update, so a snapshot at ``learned_events = n`` continues with the update ``seq = n + 1``.

>>> from operators.records import Event, SourcePosition
>>> e = Event("e", "u", "i", "click", None, 9, SourcePosition(0, 4))
>>> u = ModelUpdate("L1", 3, e, ("a",), 5, True, None, (0.5, 0.25), writer=(1, 2))
>>> ModelUpdate.from_json(u.to_json()) == u
True
>>> ModelUpdate.from_json(u.to_json().replace(',"writer":[1,2]', "")).writer is None    # logged before writers
True
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from operators.model.health import UNTESTED
from operators.model.online import Interaction, OnlineRanker
from operators.model.progress import Writer
from operators.records import Event, SourcePosition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelUpdate:
    lineage: str
    seq: int                          # ranker.learned_events after this update
    event: Event
    history: tuple[str, ...]          # the user's recent items before the event, most recent last
    watermark: int | None             # the model's input watermark when it learned the event
    observed: bool                    # the "test" half counted the event (ranker.observed += 1)
    hits: tuple[bool, ...] | None     # the fusion's measurement, when this event was measured
    situation: tuple[float, ...] = ()  # ranker.CONTEXT of the request the event answers (Interaction)
    served: int = UNTESTED            # its served-list test (Interaction.served: the health guard's input)
    writer: Writer | None = None      # (subtask, parallelism) of the replica that proposed it (progress.py)

    def to_json(self) -> str:
        e = self.event
        return json.dumps({
            "lineage": self.lineage, "seq": self.seq, "watermark": self.watermark,
            "event": [e.event_id, e.user_id, e.item_id, e.event_type, e.value, e.ts,
                      e.position.partition, e.position.offset],
            "history": list(self.history), "observed": self.observed,
            "hits": None if self.hits is None else "".join("1" if h else "0" for h in self.hits),
            "situation": list(self.situation), "served": self.served,
            "writer": None if self.writer is None else list(self.writer),
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelUpdate:
        d = json.loads(text)
        eid, user, item, kind, value, ts, partition, offset = d["event"]
        return cls(d["lineage"], int(d["seq"]), Event(eid, user, item, kind, value, int(ts),
                                                      SourcePosition(int(partition), int(offset))),
                   tuple(d["history"]), d["watermark"], bool(d["observed"]),
                   None if d["hits"] is None else tuple(c == "1" for c in d["hits"]), tuple(d.get("situation", ())),
                   int(d.get("served", UNTESTED)), None if d.get("writer") is None else tuple(d["writer"]))


def apply(ranker: OnlineRanker, update: ModelUpdate, check: bool = True) -> None:
    """Redo one logged update on ``ranker`` (which must stand at ``update.seq - 1``; a replica
    of the shared model, ``check=False``, takes it wherever it stands: replica.py)."""
    ranker.progress.record(update.watermark, update.writer)
    if update.observed:
        ranker.observed += 1
    hits = None if update.hits is None else np.array(update.hits, dtype=bool)
    ranker.learn([Interaction(update.event, update.history, update.situation, update.served)], [hits], check=check,
                 writer=update.writer)


def replay(ranker: OnlineRanker, updates: Iterable[ModelUpdate], lineage: str) -> int:
    """Apply, in order, the updates of ``lineage`` that follow the ranker's state; returns how
    many. Updates it already holds are passed over; a gap (an update missing from the log,
    which only an unreadable newer snapshot held) stops the replay with a warning, because
    applying later updates without it would not give the state they were logged from."""
    applied = 0
    for update in updates:
        if update.lineage != lineage or update.seq <= ranker.learned_events:
            continue
        if update.seq != ranker.learned_events + 1:
            log.warning("update log of lineage %s jumps from %d to %d; replay stops there",
                        lineage, ranker.learned_events, update.seq)
            break
        apply(ranker, update)
        applied += 1
    return applied
