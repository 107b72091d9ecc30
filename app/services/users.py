"""The zapi user (reference §1.3): key status and rotation through the API.

kernlb keeps only a salted hash of the key, so the key is never shown again after it was set;
the one exception is a key the server has just generated (`randomkey`), returned once in the
answer of the request that generated it.  "Disabling" the zapi user stores an empty hash: no
key matches it, and start-up does not generate a new key over it (the operator's --key or
`kernlb key` sets one again).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.errors import BadRequest
from app.services.keys import KeyStore, generate_key

DESCRIPTION = "Setting Zapi user configuration"
KEY = re.compile(r"[a-zA-Z0-9]+")
PARAMS = ("key", "newpassword", "randomkey", "status")
MASK = "********"


@dataclass(frozen=True)
class ZapiUser:
    enabled: bool


@dataclass(frozen=True)
class Change:
    params: dict[str, Any]  # the request echoed; a generated key in clear, a given one masked


class ZapiUserService:
    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def status(self) -> ZapiUser:
        return ZapiUser(enabled=self.keys.enabled())

    def change(self, body: dict[str, Any]) -> Change:
        def bad(message: str) -> BadRequest:
            return BadRequest(message, description=DESCRIPTION)

        if not body:
            raise bad("Not found any param.")
        illegal = sorted(k for k in body if k not in PARAMS)
        if illegal:
            raise bad(f"Illegal params: {', '.join(illegal)}")
        key = body.get("key")
        if "key" in body and (not isinstance(key, str) or not KEY.fullmatch(key)):
            raise bad("Error, character incorrect in key zapi.")
        status = body.get("status")
        if "status" in body and status not in ("enable", "disable"):
            raise bad("Error, character incorrect in status zapi.")
        if "newpassword" in body:
            # The original's zapi user was a system account; kernlb has none.
            raise bad("The zapi user has no password in kernlb: only its key authenticates.")
        random = body.get("randomkey")
        if "randomkey" in body and random not in ("true", "false"):
            raise bad('Invalid randomkey: it must be "true" or "false".')
        if random == "true" and "key" in body:
            raise bad("Send either a key or randomkey, not both.")
        if status == "disable" and ("key" in body or random == "true"):
            raise bad("A key cannot be set while disabling the zapi user.")

        params = dict(body)
        if status == "disable":
            self.keys.disable()
        elif isinstance(key, str):
            self.keys.set(key)
            params["key"] = MASK
        elif random == "true" or (status == "enable" and not self.keys.enabled()):
            generated = generate_key()
            self.keys.set(generated)
            params["key"] = generated
        return Change(params=params)
