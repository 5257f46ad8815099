// Shard gridloop's big collections on {tenant, dev}: run once against a sharded cluster's mongos, e.g.
//   mongosh "mongodb://mongos:27017/gridloop" deploy/mongo-shard.js
// before the platform creates the collections, or after (then the existing indexes below already exist).
// Why this key, and what stays unsharded: docs/scale-out/platform.md. Not run in this repository's tests:
// FerretDB, the MongoDB-wire server the tests use, does not shard.

const dbName = db.getName();  // the database of the platform's --store URI (mongodb://host:port/<db>)
sh.enableSharding(dbName);    // not needed any more on MongoDB 6.0+, harmless there

// readings: one document per (tenant, meter, hour): _id "tenant|dev|hour", fields tenant, dev, h, k, s, n.
// The platform's index {tenant: 1, dev: 1, h: 1} has the shard key as its prefix.
db.readings.createIndex({tenant: 1, dev: 1, h: 1});
sh.shardCollection(`${dbName}.readings`, {tenant: 1, dev: 1});

// rollups: one document per (tenant, meter, resolution, bucket): _id "tenant|dev|res|b", fields tenant, dev,
// res, b, s. Index {tenant: 1, dev: 1, res: 1, b: 1}.
db.rollups.createIndex({tenant: 1, dev: 1, res: 1, b: 1});
sh.shardCollection(`${dbName}.rollups`, {tenant: 1, dev: 1});

// events: one document per event: _id "tenant|dev|ts|type", fields tenant, dev, ts, type, severity, data.
// Index {tenant: 1, dev: 1, ts: 1}.
db.events.createIndex({tenant: 1, dev: 1, ts: 1});
sh.shardCollection(`${dbName}.events`, {tenant: 1, dev: 1});

// Left unsharded, on the database's primary shard: tenants, devices, assets, commands, rejected, leases
// (small, or looked up by _id / status across tenants).
//
// Alternative for fleets whose device ids are sequential within a tenant: spread the meters of a tenant by a
// hash of their id instead of ranges of ids (equality queries on tenant and dev stay targeted):
//   sh.shardCollection(`${dbName}.readings`, {tenant: 1, dev: "hashed"});
