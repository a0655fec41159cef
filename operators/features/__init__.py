"""Windowed feature stage: event-time features attached to each event."""

from operators.features.window import SlidingWindowCounter

__all__ = ["SlidingWindowCounter"]
