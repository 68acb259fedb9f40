"""WAL positions ("16/B374D848") as integers, and sizes as words."""

from __future__ import annotations


def parse(text: str | None) -> int | None:
    """'16/B374D848' -> int; None or '' -> None; anything else raises ValueError."""
    if not text:
        return None
    hi, sep, lo = str(text).partition("/")
    if not sep:
        raise ValueError(f"not a WAL position: {text!r}")
    return (int(hi, 16) << 32) + int(lo, 16)


def fmt(pos: int | None) -> str:
    if pos is None:
        return "?"
    return f"{pos >> 32:X}/{pos & 0xFFFFFFFF:X}"


def binary_size(n: int) -> str:
    """Bytes of disk in words: 212 MiB, 3.0 GiB (what `df -h` users read)."""
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{max(n, 0) >> 20} MiB"


def size(n: int) -> str:
    """Bytes in words: 0 B, 812 B, 1.2 kB, 3.4 MB, 1.0 GB."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - the loop always returns
