"""Cleaning stage: validate raw messages, drop duplicates, reject late and bot traffic."""

from operators.cleaning.cleaner import EventCleaner, dead_letter, dead_letter_json
from operators.cleaning.guard import EventGuard, GuardConfig, UserGuardState, WatermarkTracker
from operators.cleaning.schema import REASONS, SCHEMAS, SchemaLimits

__all__ = ["REASONS", "SCHEMAS", "EventCleaner", "EventGuard", "GuardConfig", "SchemaLimits", "UserGuardState",
           "WatermarkTracker", "dead_letter", "dead_letter_json"]
