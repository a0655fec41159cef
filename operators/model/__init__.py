"""Model stage: online learning and top-k recommendation."""

from operators.model.history import UserHistory
from operators.model.ranker import CooccurrenceRanker, RankerConfig

__all__ = ["CooccurrenceRanker", "RankerConfig", "UserHistory"]
