"""Synthetic but realistic recorded traffic of the zone: camera reads, planted watchlist vehicles, ground truth."""

from __future__ import annotations

from anpr_stream.traffic.generator import GroundTruth, generate
from anpr_stream.traffic.planting import Passage, PlantedEntry, PlantedVehicle, Planting, plant_watchlist

__all__ = [
    "GroundTruth",
    "Passage",
    "PlantedEntry",
    "PlantedVehicle",
    "Planting",
    "generate",
    "plant_watchlist",
]
