"""The platform's REST API: ``create_app`` builds it around a store (app.py), one router per resource."""

from gridloop.platform.api.app import create_app, jsonable_errors
from gridloop.platform.api.metrics import prometheus_text

__all__ = ["create_app", "jsonable_errors", "prometheus_text"]
