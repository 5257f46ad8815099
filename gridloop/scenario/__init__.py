"""Scenario files: YAML parsed into typed models, with errors that name file, field and reason."""

from gridloop.scenario.loader import ScenarioError, load_scenario
from gridloop.scenario.model import Scenario

__all__ = ["Scenario", "ScenarioError", "load_scenario"]
