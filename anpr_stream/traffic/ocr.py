"""How a camera's OCR renders a plate: separators kept or lost, occasional lowercase, and misreads (~3%)."""

from __future__ import annotations

import random

MISREAD_RATE = 0.03
LOWERCASE_RATE = 0.004

# Field confusions (O/0/D/Q, I/1/L, B/8, S/5, Z/2, G/6, U/V, 7/Z): what each character is misread as.
CONFUSIONS: dict[str, str] = {
    "O": "0DQ",
    "0": "OD",
    "D": "0O",
    "Q": "O0",
    "I": "1L",
    "1": "IL",
    "L": "1I",
    "B": "8",
    "8": "B",
    "S": "5",
    "5": "S",
    "Z": "27",
    "2": "Z",
    "7": "Z",
    "G": "6",
    "6": "G",
    "U": "V",
    "V": "U",
}


def misread(rng: random.Random, plate: str) -> str:
    """The printed plate with one OCR error: a confused character (mostly), a dropped or an added character."""
    positions = [i for i, c in enumerate(plate) if c.isalnum()]
    kind = rng.random()
    if kind < 0.75:
        confusable = [i for i in positions if plate[i] in CONFUSIONS]
        if confusable:
            i = rng.choice(confusable)
            return plate[:i] + rng.choice(CONFUSIONS[plate[i]]) + plate[i + 1 :]
    if kind < 0.9 and len(positions) > 2:
        # Characters at the edges are the ones cut off by the frame or a tow bar.
        i = positions[0] if rng.random() < 0.3 else positions[-1] if rng.random() < 0.4 else rng.choice(positions)
        return plate[:i] + plate[i + 1 :]
    # A screw or the frame read as I/1, or a character read twice.
    if rng.random() < 0.5:
        return ("1" + plate) if rng.random() < 0.5 else (plate + "I")
    i = rng.choice(positions)
    return plate[: i + 1] + plate[i] + plate[i + 1 :]


def present(rng: random.Random, plate: str) -> str:
    """The separators as the camera reports them: kept, dropped, spaces for dashes, or some lost."""
    r = rng.random()
    if r < 0.5:
        text = plate
    elif r < 0.85:
        text = plate.replace("-", "").replace(" ", "")
    elif r < 0.95:
        text = plate.replace("-", " ")
    else:
        text = "".join(c for c in plate if c.isalnum() or rng.random() < 0.5)
    return text.lower() if rng.random() < LOWERCASE_RATE else text


def read_plate(rng: random.Random, plate: str, misread_rate: float = MISREAD_RATE) -> tuple[str, bool]:
    """(raw OCR text, whether it is a misread) for one read of a printed plate."""
    if rng.random() < misread_rate:
        return present(rng, misread(rng, plate)), True
    return present(rng, plate), False
