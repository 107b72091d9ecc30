"""The ZAPI key: stored only as a salted hash, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db import repositories as repo

KEY_SETTING = "zapi_key_hash"


def hash_key(key: str, *, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", key.encode(), bytes.fromhex(salt), 10_000).hex()
    return f"pbkdf2-sha256${salt}${digest}"


def key_matches(key: str, stored: str) -> bool:
    try:
        _scheme, salt, _digest = stored.split("$")
    except ValueError:
        return False
    return hmac.compare_digest(hash_key(key, salt=salt), stored)


def generate_key() -> str:
    # Alphanumeric, like the keys ZAPI accepts ([a-zA-Z0-9]+).
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(40))


class KeyStore:
    def __init__(self, session_factory: sessionmaker[Session], *, fallback: str = "") -> None:
        self.session_factory = session_factory
        engine = session_factory.kw.get("bind")
        if not isinstance(engine, Engine):
            raise TypeError("KeyStore needs a session factory bound to an engine")
        self._engine = engine
        # The key given at start-up: accepted while the database cannot be read (a cluster node
        # whose database is down still answers GETs and tells clients why writes fail).
        self.fallback = fallback
        self._cache: tuple[str, str] | None = None  # (presented key, stored hash) last accepted

    def set(self, key: str) -> None:
        hashed = hash_key(key)
        with self.session_factory() as session:
            repo.put_setting(session, KEY_SETTING, hashed)
            session.commit()
        # The key just stored is accepted: its first request skips a second PBKDF2 run.
        self._cache = (key, hashed)

    def configured(self) -> bool:
        with self.session_factory() as session:
            return repo.get_setting(session, KEY_SETTING) is not None

    def enabled(self) -> bool:
        """A key is set (an empty stored hash means the zapi user was disabled)."""
        with self.session_factory() as session:
            return bool(repo.get_setting(session, KEY_SETTING))

    def disable(self) -> None:
        """No key matches any more; start-up does not generate one over this."""
        with self.session_factory() as session:
            repo.put_setting(session, KEY_SETTING, "")
            session.commit()
        self._cache = None

    def verify(self, presented: str | None) -> bool:
        if not presented:
            return False  # an empty key never matches
        try:
            # Read every time, never cached: another node or `kernlb key` may have changed it.
            stored = repo.read_setting(self._engine, KEY_SETTING)
        except SQLAlchemyError:
            cached = self._cache
            if cached is not None and hmac.compare_digest(cached[0], presented):
                return True
            return bool(self.fallback) and hmac.compare_digest(self.fallback, presented)
        if stored is None:
            return False
        # PBKDF2 per request would cost milliseconds: remember the last accepted pair.
        cached = self._cache
        if cached is not None and cached[1] == stored and hmac.compare_digest(cached[0], presented):
            return True
        if key_matches(presented, stored):
            self._cache = (presented, stored)
            return True
        return False
