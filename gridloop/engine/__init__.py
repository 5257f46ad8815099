"""The engine: wires the stages of each substation into one step loop, with MQTT, the platform and the run directory."""
