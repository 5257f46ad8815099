"""Commands and their status steps in MongoDB (one conditional update, atomic per document)."""

from __future__ import annotations

from typing import Any

import orjson

from gridloop.platform.store.mongo.connection import MongoBase
from gridloop.platform.store.records import (
    COMMAND_STEPS,
    OPEN_STATUSES,
    CommandRecord,
    command_step_allowed,
    in_lifecycle_order,
    late_step,
)


class MongoCommands(MongoBase):
    """Commands (_id tenant|id) with their status history."""

    def put_command(self, command: CommandRecord) -> None:
        c = command
        self.db.commands.insert_one({
            "_id": f"{c.tenant}|{c.id}", "tenant": c.tenant, "id": c.id, "device": c.device, "name": c.name,
            "args": orjson.dumps(c.args).decode(), "ts": c.ts, "expires": c.expires, "status": c.status,
            "detail": c.detail, "updated": c.updated, "history": [{"s": s, "t": t} for s, t in c.history],
        })

    @staticmethod
    def _command(d: dict) -> CommandRecord:
        """Plain ints, not bson's Int64 (epoch ms are 64-bit): the contract's msgspec encoder takes no int subclass."""
        expires = d.get("expires")
        return CommandRecord(
            tenant=d["tenant"], id=d["id"], device=d["device"], name=d["name"], args=orjson.loads(d["args"]),
            ts=int(d["ts"]), expires=None if expires is None else int(expires), status=d["status"],
            detail=d.get("detail", ""), updated=int(d.get("updated", 0)),
            history=in_lifecycle_order([[h["s"], int(h["t"])] for h in d.get("history", [])]),
        )

    def get_command(self, tenant: str, command_id: str) -> CommandRecord | None:
        doc = self.db.commands.find_one({"_id": f"{tenant}|{command_id}"})
        return self._command(doc) if doc else None

    def update_command(
        self, tenant: str, command_id: str, status: str, detail: str, ts: int, *, expect_updated: int | None = None
    ) -> bool:
        """One conditional update_one (atomic per document): only from a status ``status`` may follow."""
        if status not in COMMAND_STEPS:
            raise ValueError(f"unknown command status {status!r}")
        same = expect_updated is not None
        prior = [s for s in (*COMMAND_STEPS, status) if command_step_allowed(s, status, same)]
        if not prior:
            return False
        flt: dict[str, Any] = {"_id": f"{tenant}|{command_id}", "status": {"$in": sorted(set(prior))}}
        if expect_updated is not None:
            flt["updated"] = expect_updated
            ts = max(ts, expect_updated + 1)
        with self._writing():
            res = self.db.commands.update_one(
                flt, {"$set": {"status": status, "detail": detail, "updated": ts},
                      "$push": {"history": {"s": status, "t": ts}}},
            )
            if res.matched_count == 0:
                self._record_late_step(flt["_id"], status, ts)
        return res.matched_count > 0  # the filter holds the condition: matched means moved

    def _record_late_step(self, doc_id: str, status: str, ts: int) -> None:
        """A late report of an earlier step (another replica wrote the later one first) goes into the history
        only; compare-and-set on the whole history, so it is recorded once whoever else writes."""
        doc = self.db.commands.find_one({"_id": doc_id}, {"status": 1, "history": 1})
        if doc is not None and late_step(doc["status"], status, [h["s"] for h in doc.get("history", [])]):
            self.db.commands.update_one({"_id": doc_id, "history": doc.get("history", [])},
                                        {"$push": {"history": {"s": status, "t": ts}}})

    def open_commands(self) -> list[CommandRecord]:
        return [self._command(d) for d in self.db.commands.find({"status": {"$in": OPEN_STATUSES}}).sort("ts", 1)]
