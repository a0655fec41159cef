"""Model stage: online learning and top-k recommendation."""

from operators.model.history import UserHistory, UserState
from operators.model.online import Interaction, OnlineConfig, OnlineRanker
from operators.model.step import ModelStep, StepResult

__all__ = ["Interaction", "ModelStep", "OnlineConfig", "OnlineRanker", "StepResult", "UserHistory", "UserState"]
