"""Commands and their status steps in SQLite (read, check and write in one transaction)."""

from __future__ import annotations

import orjson

from gridloop.platform.store.records import (
    COMMAND_STEPS,
    OPEN_STATUSES,
    CommandRecord,
    command_step_allowed,
    in_lifecycle_order,
    late_step,
)
from gridloop.platform.store.sqlite.connection import SqliteBase


class SqliteCommands(SqliteBase):
    """Commands; a status only moves forward (COMMAND_STEPS)."""

    def put_command(self, command: CommandRecord) -> None:
        c = command
        with self._lock:
            self._db.execute(
                "INSERT INTO commands VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (c.tenant, c.id, c.device, c.name, orjson.dumps(c.args), c.ts, c.expires, c.status, c.detail,
                 c.updated, orjson.dumps(c.history)),
            )

    @staticmethod
    def _command(row: tuple) -> CommandRecord:
        return CommandRecord(
            tenant=row[0], id=row[1], device=row[2], name=row[3], args=orjson.loads(row[4]), ts=row[5],
            expires=row[6], status=row[7], detail=row[8], updated=row[9],
            history=in_lifecycle_order(orjson.loads(row[10])),
        )

    def get_command(self, tenant: str, command_id: str) -> CommandRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM commands WHERE tenant=? AND id=?", (tenant, command_id)
            ).fetchone()
        return self._command(row) if row else None

    def update_command(
        self, tenant: str, command_id: str, status: str, detail: str, ts: int, *, expect_updated: int | None = None
    ) -> bool:
        if status not in COMMAND_STEPS:
            raise ValueError(f"unknown command status {status!r}")
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")  # read, check and write as one step, whichever replica writes
            try:
                row = db.execute("SELECT status, updated, history FROM commands WHERE tenant=? AND id=?",
                                 (tenant, command_id)).fetchone()
                moved = row is not None and command_step_allowed(row[0], status, same=expect_updated is not None)
                if moved and expect_updated is not None:
                    moved = row[1] == expect_updated
                    ts = max(ts, expect_updated + 1)
                if moved:
                    history = [*orjson.loads(row[2]), [status, ts]]
                    db.execute("UPDATE commands SET status=?, detail=?, updated=?, history=? WHERE tenant=? AND id=?",
                               (status, detail, ts, orjson.dumps(history), tenant, command_id))
                elif row is not None and late_step(row[0], status, [h[0] for h in orjson.loads(row[2])]):
                    history = [*orjson.loads(row[2]), [status, ts]]
                    db.execute("UPDATE commands SET history=? WHERE tenant=? AND id=?",
                               (orjson.dumps(history), tenant, command_id))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return moved

    def open_commands(self) -> list[CommandRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM commands WHERE status IN (?,?,?) ORDER BY ts", OPEN_STATUSES
            ).fetchall()
        return [self._command(r) for r in rows]
