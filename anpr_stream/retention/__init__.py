"""GDPR retention: how long each class of data may be kept and who may see it when (pure policy; the purge job that
needs the database is `anpr_stream.retention.purge`, imported on its own)."""

from anpr_stream.retention.policy import (
    PRESETS,
    Access,
    DataClass,
    RetentionPolicy,
    authorisation_covers,
    policy_from_env,
    preset,
    required_authorisation,
)

__all__ = [
    "PRESETS",
    "Access",
    "DataClass",
    "RetentionPolicy",
    "authorisation_covers",
    "policy_from_env",
    "preset",
    "required_authorisation",
]
