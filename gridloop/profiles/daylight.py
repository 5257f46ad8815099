"""Sunrise and sunset (local solar time) from latitude and day of year; drives lighting."""

from __future__ import annotations

import numpy as np


def sun_times(latitude_deg: float, day_of_year: int) -> tuple[float, float]:
    """Sunrise and sunset in seconds after midnight (solar noon at 12:00; civil offsets ignored)."""
    decl = np.radians(23.44) * np.sin(2 * np.pi * (284 + day_of_year) / 365.0)
    lat = np.radians(latitude_deg)
    cos_h = np.clip(-np.tan(lat) * np.tan(decl), -1.0, 1.0)
    half_day_h = np.degrees(np.arccos(cos_h)) / 15.0
    return float((12.0 - half_day_h) * 3600.0), float((12.0 + half_day_h) * 3600.0)
