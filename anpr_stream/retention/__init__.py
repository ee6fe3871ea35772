"""GDPR retention: how long each class of data may be kept and who may see it when (pure policy)."""

from anpr_stream.retention.policy import PRESETS, RetentionPolicy, preset

__all__ = ["PRESETS", "RetentionPolicy", "preset"]
