// Shard gridloop's big collections (store layout 3): run once against a sharded cluster's mongos, e.g.
//   mongosh "mongodb://mongos:27017/gridloop" deploy/mongo-shard.js
// before the platform first writes to the database. Why these keys, and what stays unsharded:
// docs/scale-out/platform.md ("MongoDB sharding"). Not run in this repository's tests: FerretDB, the MongoDB-wire
// server the tests use, does not shard.
//
// Every key contains _id (or every _id starts with the key's values): MongoDB enforces _id uniqueness per shard
// only, and the store's idempotency rests on an insert of an existing _id failing.

const dbName = db.getName();  // the database of the platform's --store URI (mongodb://host:port/<db>)
sh.enableSharding(dbName);    // not needed any more on MongoDB 6.0+, harmless there

// chunks: the readings of one ingest batch, tenant and quantity set as columns; _id "tenant|t0|digest" (its first
// timestamp leads: a hashed _id spreads the inserts). The platform's index {tenant: 1, devs: 1, t0: 1} finds a
// device's chunks.
db.chunks.createIndex({tenant: 1, _id: "hashed"});
sh.shardCollection(`${dbName}.chunks`, {tenant: 1, _id: "hashed"});

// reading_keys: one claim per reading, _id "tenant|dev|ts", inserted and looked up by _id only.
sh.shardCollection(`${dbName}.reading_keys`, {_id: "hashed"});

// rollup_parts: the buckets one fold computed, per resolution, as columns; _id "<fold id>|res|k".
db.rollup_parts.createIndex({tenant: 1, _id: "hashed"});
sh.shardCollection(`${dbName}.rollup_parts`, {tenant: 1, _id: "hashed"});

// events: one document per event: _id "tenant|dev|ts|type", index {tenant: 1, dev: 1, ts: 1}.
db.events.createIndex({tenant: 1, dev: 1, ts: 1});
sh.shardCollection(`${dbName}.events`, {tenant: 1, dev: 1});

// rollups: layout 2's bucket documents (_id "tenant|dev|res|b"), read but no longer written; a database migrated
// from layout 2 that was sharded keeps {tenant: 1, dev: 1}.
db.rollups.createIndex({tenant: 1, dev: 1, res: 1, b: 1});
sh.shardCollection(`${dbName}.rollups`, {tenant: 1, dev: 1});

// Left unsharded, on the database's primary shard: tenants, devices, assets, commands, rejected, leases, locks,
// store_info (small, or looked up by _id / status across tenants).
