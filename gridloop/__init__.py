"""gridloop: a virtual smart-metering pilot.

Profiles drive a power-flow model of the grid, virtual meters sample it, device
integration adapters publish the readings over MQTT to a real metering platform,
and commands from the platform flow back into the running grid.
"""

__version__ = "0.1.0"
