"""Store on MongoDB (tested against FerretDB v1.24), one module per concern; connection.py says what it is
written for and how writers of several replicas take turns."""

from __future__ import annotations

from gridloop.platform.store.mongo.commands import MongoCommands
from gridloop.platform.store.mongo.leases import MongoLeases
from gridloop.platform.store.mongo.migrate import MongoMigration
from gridloop.platform.store.mongo.queries import MongoQueries
from gridloop.platform.store.mongo.readings import MongoReadings
from gridloop.platform.store.mongo.registry import MongoRegistry
from gridloop.platform.store.mongo.rollups import MongoRollups, encode_field
from gridloop.platform.store.mongo.tenants import MongoTenants


class MongoStore(MongoMigration, MongoTenants, MongoRegistry, MongoReadings, MongoQueries, MongoRollups, MongoCommands,
                 MongoLeases):
    """The MongoDB backend; the database is the URI's path (``mongodb://host:port/db``)."""


__all__ = ["MongoStore", "encode_field"]
