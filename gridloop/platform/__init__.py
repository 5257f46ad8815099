"""The metering platform: MQTT ingest, storage, device registry, tenants, REST API, commands.

It imports nothing of the simulator: physical devices and outside services use it alone,
through MQTT topics and the REST API fixed in the interface contract.
"""
