"""Windowed feature stage: event-time item, user and global features attached to each event."""

from operators.features.spec import FEATURE_COLUMNS, WINDOW_COLUMNS, FeatureConfig
from operators.features.user import SessionFeatures, UserActivity
from operators.features.windows import WindowFeatureBuilder, WindowFeatures

__all__ = ["FEATURE_COLUMNS", "WINDOW_COLUMNS", "FeatureConfig", "SessionFeatures", "UserActivity",
           "WindowFeatureBuilder", "WindowFeatures"]
