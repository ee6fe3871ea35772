"""Traffic volume per camera and hour: the zone's sites, commuter peaks, night lows, lower weekends."""

from __future__ import annotations

from dataclasses import dataclass

from anpr_stream.cameras import Camera

# Weekday: commuter peaks 7-9 and 16-19, night lows.
COMMUTER: tuple[float, ...] = (
    0.12, 0.07, 0.05, 0.05, 0.09, 0.30, 0.85, 1.90, 2.00, 1.30, 1.00, 1.00,
    1.10, 1.05, 1.10, 1.35, 1.90, 2.00, 1.60, 1.05, 0.75, 0.55, 0.40, 0.22,
)  # fmt: skip
# Border crossings and the motorway: the same peaks over a higher night floor (lorries, night shifts, couriers).
BORDER: tuple[float, ...] = (
    0.30, 0.22, 0.20, 0.22, 0.30, 0.55, 1.00, 1.80, 1.85, 1.30, 1.05, 1.00,
    1.05, 1.00, 1.05, 1.30, 1.75, 1.85, 1.50, 1.05, 0.80, 0.65, 0.50, 0.38,
)  # fmt: skip
# Weekend: a late start and a flat midday.
WEEKEND: tuple[float, ...] = (
    0.30, 0.22, 0.15, 0.10, 0.08, 0.10, 0.20, 0.40, 0.70, 1.00, 1.30, 1.50,
    1.60, 1.55, 1.50, 1.45, 1.40, 1.30, 1.10, 0.90, 0.70, 0.55, 0.45, 0.35,
)  # fmt: skip
# Outlet village: shop hours.
SHOPPING: tuple[float, ...] = (
    0.02, 0.01, 0.01, 0.01, 0.01, 0.03, 0.10, 0.30, 0.60, 1.40, 2.00, 2.10,
    2.20, 2.20, 2.10, 2.00, 1.90, 1.80, 1.40, 0.60, 0.25, 0.12, 0.05, 0.03,
)  # fmt: skip
# The Meeswijk ferry does not sail at night.
FERRY: tuple[float, ...] = (
    0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.60, 1.60, 1.80, 1.40, 1.30, 1.40,
    1.50, 1.50, 1.50, 1.60, 1.80, 1.90, 1.60, 1.20, 0.90, 0.60, 0.00, 0.00,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SiteProfile:
    share: float  # of the zone's weekday reads
    weekday: tuple[float, ...]  # 24 relative hourly weights, local time
    weekend: tuple[float, ...]
    saturday: float  # weekend day volume relative to a weekday
    sunday: float
    truck_share: float = 0.05


SITES: dict[str, SiteProfile] = {
    "LM-E314-BOORSEM": SiteProfile(0.30, BORDER, WEEKEND, 0.75, 0.60, truck_share=0.16),
    "LM-N78-REKEM": SiteProfile(0.17, COMMUTER, WEEKEND, 0.70, 0.50, truck_share=0.07),
    "LM-VELDWEZELT": SiteProfile(0.12, BORDER, WEEKEND, 0.75, 0.55, truck_share=0.06),
    "LM-SMEERMAAS": SiteProfile(0.10, BORDER, WEEKEND, 0.75, 0.55),
    "LM-MM-VILLAGE": SiteProfile(0.10, SHOPPING, SHOPPING, 1.50, 1.30, truck_share=0.01),
    "LM-EISDEN": SiteProfile(0.08, COMMUTER, WEEKEND, 0.70, 0.50, truck_share=0.03),
    "LM-LANAKEN-C": SiteProfile(0.10, COMMUTER, WEEKEND, 0.70, 0.50, truck_share=0.03),
    "LM-MEESWIJK-VEER": SiteProfile(0.03, FERRY, FERRY, 1.20, 1.20, truck_share=0.0),
}


def site_profile(camera: Camera) -> SiteProfile:
    """The profile of a camera's site; an unknown site gets a generic one by whether it is a border crossing."""
    known = SITES.get(camera.site)
    if known is not None:
        return known
    return SiteProfile(0.08, BORDER if camera.border_crossing else COMMUTER, WEEKEND, 0.75, 0.55)


def hourly_rates(cameras: list[Camera], reads_per_day: float) -> list[list[tuple[float, ...]]]:
    """rates[camera][day kind] = 24 expected reads per local hour; day kinds 0 weekday, 1 Saturday, 2 Sunday.

    A weekday adds up to `reads_per_day` over all cameras; a site's share is split evenly over its cameras.
    """
    per_site: dict[str, int] = {}
    for camera in cameras:
        per_site[camera.site] = per_site.get(camera.site, 0) + 1
    profiles = [site_profile(c) for c in cameras]
    total_share = sum(p.share / per_site[c.site] for c, p in zip(cameras, profiles, strict=True))
    rates: list[list[tuple[float, ...]]] = []
    for camera, profile in zip(cameras, profiles, strict=True):
        daily = reads_per_day * profile.share / per_site[camera.site] / total_share
        weekday = sum(profile.weekday)
        weekend = sum(profile.weekend)
        rates.append(
            [
                tuple(daily * w / weekday for w in profile.weekday),
                tuple(daily * profile.saturday * w / weekend for w in profile.weekend),
                tuple(daily * profile.sunday * w / weekend for w in profile.weekend),
            ]
        )
    return rates
