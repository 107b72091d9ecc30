"""The API tests' engines: each app still gets its own engine, pool and SQLite file, but the
SQL that SQLAlchemy compiles is kept for the whole worker."""

from __future__ import annotations

import threading

from sqlalchemy import Engine
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.util import LRUCache

from app.db.session import make_engine

# The engine's own cache holds 500; the API tests run ~1,000 distinct statements.
COMPILED_STATEMENTS = 4000


class WorkerSqliteEngines:
    """SQLAlchemy caches compiled statements per engine, keyed on the engine's dialect object
    (the ORM's per-mapper caches too), so every new app compiled every statement again: ~1/4
    of an API test's CPU, which a server pays once.  The compiled form depends only on the
    statement and the dialect's configuration, the same for every SQLite file of a process
    (sqlite3 library, pysqlite driver, the options `make_engine` gives), so this factory's
    SQLite engines share one initialised dialect and one cache.  Nothing of a test's database
    is shared: its own engine, pool, connections and file.  Other URLs (the throw-away
    PostgreSQL: its dialect is initialised from the server it talks to) get a plain engine."""

    def __init__(self) -> None:
        self._dialects: dict[str, Dialect] = {}
        self._compiled: LRUCache[object, object] = LRUCache(COMPILED_STATEMENTS)
        self._lock = threading.Lock()

    def __call__(self, url: str) -> Engine:
        engine = make_engine(url)
        if engine.dialect.name != "sqlite":
            return engine
        driver = engine.url.drivername
        with self._lock:
            dialect = self._dialects.get(driver)
            if dialect is None:
                # Initialised now (server version, isolation level), before any engine uses it:
                # no other engine's first connect ever writes to the shared dialect.
                with engine.connect():
                    pass
                self._dialects[driver] = engine.dialect
            else:
                # Before the first connection: the pool and the connections use this one.
                # (The engine's own fresh dialect is still initialised on its first connect,
                # by create_engine's listener, and then never used.)
                engine.dialect = dialect
                engine.pool._dialect = dialect
        engine.update_execution_options(compiled_cache=self._compiled)
        return engine


worker_engines = WorkerSqliteEngines()
