"""Household demand profiles: a vectorised, streamed behaviour model of a fleet of homes."""

from gridloop.profiles.fleet import HouseholdFleet
from gridloop.profiles.params import ITALIAN_FAMILY, SWEDISH_APARTMENT, HouseholdParams

__all__ = ["ITALIAN_FAMILY", "SWEDISH_APARTMENT", "HouseholdFleet", "HouseholdParams"]
