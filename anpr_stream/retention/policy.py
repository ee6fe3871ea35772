"""Retention presets per jurisdiction, per data class, and who may see data of a given age (pure: `now` and the
environment are passed in)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class DataClass(StrEnum):
    PASSAGES = "passages"  # non-hit passages
    HITS = "hits"
    OUTCOMES = "outcomes"  # what was done about a hit
    AUDIT = "audit"


class Access(StrEnum):
    """What a query must carry to see data of a given age."""

    OPEN = "open"  # any justified police purpose (purpose and case reference, logged)
    JUDICIAL_WITH_PROSECUTOR_DECISION = "judicial_with_prosecutor_decision"  # BE after the first month
    SENIOR_AUTHORISATION = "senior_authorisation"  # UK after 90 days
    PROSECUTOR_EVERY_QUERY = "prosecutor_every_query"  # NL: no open window at all
    EXPIRED = "expired"  # past retention: nobody, whatever the authorisation


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each data class is kept and who may see it when.

    Passages are purged by whole day partitions, those with a hit included: the `passages` horizon applies to every
    passage. A hit row is self-contained (plate, camera, time, the published payload), so the `hits` horizon governs
    what remains of a hit passage. In the presets both are 12 months (BE, UK) or 28 days (NL), as the law allows no
    longer for either; a shorter passages horizon set by override simply leaves the hit rows as the record of hit
    passages. Audit rows are not camera data: their horizon is the DPO's, in years by default."""

    name: str
    passages: timedelta  # non-hit passages
    hits: timedelta
    outcomes: timedelta
    audit: timedelta
    open_access: timedelta  # younger data: any justified police purpose
    restricted: Access = Access.JUDICIAL_WITH_PROSECUTOR_DECISION  # older data, until its horizon

    def horizon_for(self, data_class: DataClass) -> timedelta:
        return {
            DataClass.PASSAGES: self.passages,
            DataClass.HITS: self.hits,
            DataClass.OUTCOMES: self.outcomes,
            DataClass.AUDIT: self.audit,
        }[data_class]

    def horizon(self, data_class: DataClass, now: datetime) -> datetime:
        """Data of this class dated before this instant is past retention: never stored, never returned, purged."""
        return now - self.horizon_for(data_class)

    def passage_horizon(self, now: datetime) -> datetime:
        """Reads observed before this instant are past retention: never stored (late replays), purged if held."""
        return self.horizon(DataClass.PASSAGES, now)

    def hit_horizon(self, now: datetime) -> datetime:
        return self.horizon(DataClass.HITS, now)


def required_authorisation(
    policy: RetentionPolicy, data_age: timedelta, data_class: DataClass = DataClass.PASSAGES
) -> Access:
    """What a query must carry to see data `data_age` old (age = now - observed_at; data from the future counts as
    new). Audit rows are open within their horizon: who may read them at all is a question of role, not age."""
    age = max(data_age, timedelta(0))
    if age >= policy.horizon_for(data_class):
        return Access.EXPIRED
    if data_class is DataClass.AUDIT or age < policy.open_access:
        return Access.OPEN
    return policy.restricted


def authorisation_covers(held: Access, required: Access) -> bool:
    """A query holding `held` may see data requiring `required`: open data needs nothing, expired data is never
    seen, anything else needs exactly that kind of authorisation."""
    if required is Access.EXPIRED:
        return False
    return required is Access.OPEN or held is required


_DAY = timedelta(days=1)
_YEAR = 365 * _DAY

PRESETS: dict[str, RetentionPolicy] = {
    # Belgium, Police Function Act (2018): at most 12 months; after the first month only judicial purposes with a
    # written, reasoned decision of the procureur des Konings.
    "be": RetentionPolicy("be", passages=_YEAR, hits=_YEAR, outcomes=_YEAR, audit=5 * _YEAR, open_access=30 * _DAY,
                          restricted=Access.JUDICIAL_WITH_PROSECUTOR_DECISION),
    # Netherlands: 28 days; the prosecutor approves every query (no open window).
    "nl": RetentionPolicy("nl", passages=28 * _DAY, hits=28 * _DAY, outcomes=28 * _DAY, audit=5 * _YEAR,
                          open_access=0 * _DAY, restricted=Access.PROSECUTOR_EVERY_QUERY),
    # UK forces: 90 days open, up to 12 months with senior authorisation.
    "uk": RetentionPolicy("uk", passages=_YEAR, hits=_YEAR, outcomes=_YEAR, audit=5 * _YEAR, open_access=90 * _DAY,
                          restricted=Access.SENIOR_AUTHORISATION),
}  # fmt: skip


def preset(name: str) -> RetentionPolicy:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown retention preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None


# Overrides in whole days. Camera data may only be kept shorter than the preset (the preset is the legal maximum);
# the audit log's horizon is the DPO's choice.
OVERRIDES: dict[str, str] = {
    "ANPR_RETENTION_PASSAGES_DAYS": "passages",
    "ANPR_RETENTION_HITS_DAYS": "hits",
    "ANPR_RETENTION_OUTCOMES_DAYS": "outcomes",
    "ANPR_RETENTION_AUDIT_DAYS": "audit",
    "ANPR_RETENTION_OPEN_DAYS": "open_access",
}


DEFAULT_PRESET = "be"


def policy_from_env(env: Mapping[str, str]) -> RetentionPolicy:
    """`ANPR_RETENTION` (preset, default DEFAULT_PRESET) with the `ANPR_RETENTION_*_DAYS` overrides; ValueError with a
    reason."""
    base = preset(env.get("ANPR_RETENTION", "").strip() or DEFAULT_PRESET)
    changes: dict[str, timedelta] = {}
    for variable, attribute in OVERRIDES.items():
        raw = env.get(variable, "").strip()
        if not raw:
            continue
        try:
            days = int(raw)
        except ValueError:
            raise ValueError(f"{variable} must be a whole number of days, got {raw!r}") from None
        minimum = 0 if attribute == "open_access" else 1
        if days < minimum:
            raise ValueError(f"{variable} must be at least {minimum}, got {days}")
        limit: timedelta = getattr(base, attribute)
        if attribute != "audit" and days * _DAY > limit:
            raise ValueError(f"{variable}={days} exceeds the {base.name!r} preset's legal maximum of {limit.days} days")
        changes[attribute] = days * _DAY
    policy = replace(
        base,
        passages=changes.get("passages", base.passages),
        hits=changes.get("hits", base.hits),
        outcomes=changes.get("outcomes", base.outcomes),
        audit=changes.get("audit", base.audit),
        open_access=changes.get("open_access", base.open_access),
    )
    if policy.open_access > min(policy.passages, policy.hits):
        raise ValueError("the open-access window cannot be longer than the passages or hits horizon")
    return policy
