"""Pure plate knowledge: normalisation, OCR confusion classes and per-country formats."""

from anpr_stream.core.plates.confusion import CONFUSION_CLASSES, confusion_form
from anpr_stream.core.plates.formats import COUNTRIES, FORMATS, plate_format, plate_formats
from anpr_stream.core.plates.normalisation import HOMOGLYPHS, is_pattern, normalise, normalise_pattern

__all__ = [
    "CONFUSION_CLASSES",
    "COUNTRIES",
    "FORMATS",
    "HOMOGLYPHS",
    "confusion_form",
    "is_pattern",
    "normalise",
    "normalise_pattern",
    "plate_format",
    "plate_formats",
]
