"""The service's metadata tables, one SQLAlchemy Core definition for SQLite and PostgreSQL.

Core (not the ORM) keeps every statement explicit, which matters for the two guarantees the scheduler and the
poller rely on: a schedule's tick is claimed with a compare-and-set UPDATE, and a unique (schedule, tick) pair
on `runs` makes a second firing of the same tick impossible even when two service processes share a database.
Times are stored as naive UTC (SQLite has no time zones) and handed out as aware UTC by `store.py`.

A database made by an older version of the service opens as it is: `make_engine` adds the columns it lacks
(every column added after the first release is nullable or has a server default, so old rows stay valid).
Columns are only ever added, never renamed or dropped, so an older service can still open a newer database.
Schedules are never deleted either: a delete sets `deleted_at`, so a schedule id is never handed out twice
and the runs a deleted schedule started keep its id. `secrets` holds values made once and shared by every
service on the database (the session signing key).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    false,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateColumn

logger = logging.getLogger(__name__)
metadata = MetaData()
POOL_SIZE = 40  # as many as the threads that serve requests (anyio's default limit)
POOL_OVERFLOW = 20

recipes = Table(
    "recipes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(80), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("yaml", Text, nullable=False),  # the body as posted, comments and all
    Column("normalized", Text, nullable=False),  # what jobs run: stage versions resolved, defaults filled in
    Column("fingerprint", String(32), nullable=False),  # keys the run's output (Recipe.fingerprint)
    Column("digest", String(64), nullable=False),  # identity of the version: any change to the model
    Column("created_at", DateTime, nullable=False),
    # Set by a delete: the rows stay, so the runs of a deleted recipe keep their version and numbers go on.
    Column("deleted_at", DateTime, nullable=True),
    UniqueConstraint("name", "version", name="uq_recipe_version"),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipe", String(80), nullable=False),
    Column("version", Integer, nullable=True),  # None: the newest version when the schedule fires
    Column("cron", String(120), nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("next_run_at", DateTime, nullable=False),
    Column("last_fired_at", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    # Each run builds on the schedule's newest successful run (`corpusmill run --base`).
    Column("incremental", Boolean, nullable=False, default=False, server_default=false()),
    # What a tick does when the schedule's last run is still in flight: skip | queue | cancel (scheduler.py).
    Column("overlap", String(8), nullable=False, default="skip", server_default="skip"),
    # Ticks missed while the service was down: one (fire one run for them all) | none (fire nothing).
    Column("catch_up", String(8), nullable=False, default="one", server_default="one"),
    Column("timezone", String(64), nullable=False, default="UTC", server_default="UTC"),  # of the cron fields
    Column("webhook_url", Text, nullable=True),  # POSTed to when a run fails or succeeds with warnings
    # Ticks that fired no run (overlap skip, or missed under catch_up none).
    Column("skipped_ticks", Integer, nullable=False, default=0, server_default="0"),
    # Set by a delete: the row stays, so ids are never reused and runs keep naming their schedule.
    Column("deleted_at", DateTime, nullable=True),
    sqlite_autoincrement=True,
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipe", String(80), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("recipe_id", Integer, ForeignKey("recipes.id"), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("run_dir", Text, nullable=True),
    Column("ray_job_id", String(120), nullable=True, unique=True),
    Column("trigger", String(16), nullable=False),  # manual | schedule
    Column("schedule_id", Integer, ForeignKey("schedules.id", ondelete="SET NULL"), nullable=True),
    Column("scheduled_for", DateTime, nullable=True),  # the cron tick a scheduled run belongs to
    Column("created_at", DateTime, nullable=False),
    Column("submitted_at", DateTime, nullable=True),
    Column("started_at", DateTime, nullable=True),
    Column("finished_at", DateTime, nullable=True),
    Column("error", Text, nullable=True),
    Column("error_detail", Text, nullable=True),  # a failed job's traceback; `error` is its one-line cause
    Column("progress", Text, nullable=True),  # JSON snapshot of the stage markers
    Column("base_run_id", Integer, ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    Column("base_note", Text, nullable=True),  # why a run of an incremental schedule has no base
    Column("incremental", Text, nullable=True),  # JSON: the finished run's stats.json "incremental" summary
    UniqueConstraint("schedule_id", "scheduled_for", name="uq_run_tick"),
)


# Values the service makes once and every replica shares, such as the key that signs browser sessions (so a
# restart or a second replica does not log users out). Never the API token: that stays in the environment.
shared_secrets = Table(
    "secrets",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", DateTime, nullable=False),
)


def with_driver(url: str) -> str:
    """`postgresql://` means psycopg2 to SQLAlchemy; use psycopg 3 for it when that is what is installed."""
    parsed = make_url(url)
    psycopg3_only = (
        importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None
    )
    if parsed.drivername == "postgresql" and psycopg3_only:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def make_engine(url: str) -> Engine:
    """An engine for `url` with the tables created; SQLite gets a busy timeout and WAL so readers never block."""
    url = with_driver(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            # Every request thread (anyio's pool: 40) keeps a connection instead of opening one (and setting
            # its pragmas) per request once the default five are taken; SQLite connections are cheap to hold.
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=POOL_OVERFLOW)
    metadata.create_all(engine)
    add_missing_columns(engine)
    return engine


def add_missing_columns(engine: Engine) -> list[str]:
    """Add the columns a database made by an older service lacks; returns them as `table.column`.

    Two services starting on one database at once may both try; the loser's ALTER fails, and it checks that
    the column is there now instead of failing.
    """
    added = []
    for table in metadata.sorted_tables:
        present = {c["name"] for c in inspect(engine).get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            ddl = str(CreateColumn(column).compile(dialect=engine.dialect))
            for key in column.foreign_keys:
                ddl += f" REFERENCES {key.column.table.name} ({key.column.name})"
                ddl += f" ON DELETE {key.ondelete}" if key.ondelete else ""
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))
            except DBAPIError:
                if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise
            else:
                logger.info("database: added column %s.%s", table.name, column.name)
                added.append(f"{table.name}.{column.name}")
    return added
