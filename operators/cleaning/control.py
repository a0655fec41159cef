"""The control topic's records: requests to the job, validated like events.

One kind today, forgetting a user (README "Security and privacy"):

    {"forget_user": "<user id>", "request_id": "<id the acknowledgement carries>"}

Both ids follow the event schema's id rules (operators/cleaning/schema.py). With pseudonyms on,
the user id becomes its pseudonym here, before anything keys by it, and a rejected record's
dead letter has it pseudonymised too: the control stream holds originals no more than the
events do.

>>> cleaner = ControlCleaner()
>>> cleaner.clean(b'{"forget_user": "alice", "request_id": "r1"}')
ForgetUser(user_id='alice', request_id='r1')
>>> cleaner.clean(b'{"forget_user": "alice"}').reason
'missing_field'
>>> cleaner.clean(b'{"reset_model": true, "request_id": "r1"}').reason
'unknown_control'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from operators.cleaning.cleaner import check_id, decode_object, json_decoder
from operators.cleaning.schema import SchemaLimits
from operators.records import Rejection, SourcePosition
from operators.security import Pseudonymizer

_UNKNOWN = SourcePosition()


@dataclass(frozen=True, slots=True)
class ForgetUser:
    """Erase what the job keeps about one user (its pseudonym, when pseudonyms are on)."""

    user_id: str
    request_id: str

    def acknowledgement(self, had_state: bool, variant: str, model_shard: int, model_version: int,
                        cut_version: int | None, now_ms: int) -> dict[str, Any]:
        """The record the model operator sends (to the metrics topic) once the user's state is
        gone. It names the request, never the user. ``cut_version``: the version of the snapshot
        cut for the request (None: the shared model's next scheduled snapshot)."""
        return {"kind": "forget_ack", "request_id": self.request_id, "erased_user_state": had_state,
                "variant": variant, "model_shard": model_shard, "model_version": model_version,
                "snapshot_cut_at": cut_version, "acked_ts": now_ms}


class ControlCleaner:
    """Raw control payloads -> :class:`ForgetUser` or :class:`Rejection` (never raises)."""

    def __init__(self, limits: SchemaLimits | None = None, pseudonyms: Pseudonymizer | None = None) -> None:
        self.limits = limits or SchemaLimits()
        self.pseudonyms = pseudonyms
        self._decoder = json_decoder()

    def clean(self, payload: bytes, position: SourcePosition = _UNKNOWN) -> ForgetUser | Rejection:
        result = self._clean(payload, position)
        p = self.pseudonyms
        if p is None:
            return result
        if isinstance(result, ForgetUser):
            return ForgetUser(p(result.user_id), result.request_id)
        return dataclasses.replace(result, payload=p.scrub(result.payload))

    def _clean(self, payload: bytes, position: SourcePosition) -> ForgetUser | Rejection:
        doc = decode_object(self._decoder, payload, position, self.limits)
        if isinstance(doc, Rejection):
            return doc
        if "forget_user" not in doc:
            return Rejection("unknown_control", f"a control record needs forget_user; got keys {sorted(doc)[:10]}",
                             payload, position)
        for field in ("forget_user", "request_id"):
            problem = check_id(doc, field, self.limits)
            if problem is not None:
                return Rejection(problem[0], problem[1], payload, position)
        return ForgetUser(doc["forget_user"], doc["request_id"])
