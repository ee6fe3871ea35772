"""OCR confusion classes: characters a camera cannot tell apart compare equal (contract step 3)."""

from __future__ import annotations

from anpr_stream.core import accel

# Seen in the field on reflective plates: round letters read as zero, thin strokes as one, and so on. The first
# character of each class is its representative.
CONFUSION_CLASSES: tuple[str, ...] = ("0ODQ", "1IL", "2Z", "5S", "8B", "6G")

_TABLE = str.maketrans({c: cls[0] for cls in CONFUSION_CLASSES for c in cls[1:]})
_ASCII_TABLE = bytes.maketrans(
    "".join(cls[1:] for cls in CONFUSION_CLASSES).encode("ascii"),
    "".join(cls[0] * (len(cls) - 1) for cls in CONFUSION_CLASSES).encode("ascii"),
)


def confusion_form(normalised: str) -> str:
    """Map each character to its class representative; characters outside every class (and `?`, `*`) stay."""
    fast = accel.native
    if fast is not None and (done := fast.confusion_form(normalised)) is not None:  # ASCII only
        return done
    if normalised.isascii():
        # Normalised plates are ASCII: a bytes translation is several times faster than str.translate.
        return normalised.encode("ascii").translate(_ASCII_TABLE).decode("ascii")
    return normalised.translate(_TABLE)
