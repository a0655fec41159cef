"""Cleaning stage: validate raw messages, drop duplicates, reject bot traffic and late events."""

from operators.cleaning.cleaner import EventCleaner, dead_letter, dead_letter_json
from operators.cleaning.event_time import WatermarkTracker, event_time, is_late
from operators.cleaning.guard import EventGuard, GuardConfig, UserGuardState
from operators.cleaning.schema import REASONS, SCHEMAS, SchemaLimits

__all__ = ["REASONS", "SCHEMAS", "EventCleaner", "EventGuard", "GuardConfig", "SchemaLimits", "UserGuardState",
           "WatermarkTracker", "dead_letter", "dead_letter_json", "event_time", "is_late"]
