"""Reference services that run outside the simulator, like a service developer's own code.

Each knows only the platform's MQTT topics and REST API (through :mod:`gridloop.sdk`) and runs as
its own process: ``python -m gridloop.services.demand_response --help``.
"""
