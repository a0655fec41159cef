"""Model stage: online learning and top-k recommendation."""

from operators.model.history import UserHistory, UserState
from operators.model.ranker import CooccurrenceRanker, RankerConfig
from operators.model.step import ModelStep, StepResult

__all__ = ["CooccurrenceRanker", "ModelStep", "RankerConfig", "StepResult", "UserHistory", "UserState"]
