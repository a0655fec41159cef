"""Cleaning stage: validate raw Kafka payloads into events or dead-letter records."""

from operators.cleaning.cleaner import EventCleaner, dead_letter_json

__all__ = ["EventCleaner", "dead_letter_json"]
