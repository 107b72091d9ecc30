"""The zapi user (reference §1.3): key status and rotation through the API.

kernlb keeps only a salted hash of the key, so the key is never shown again after it was set;
the one exception is a key the server has just generated (`randomkey`), returned once in the
answer of the request that generated it.  "Disabling" the zapi user stores an empty hash: no
key matches it, and start-up does not generate a new key over it (the operator's --key or
`kernlb key` sets one again).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import BadRequest
from app.schemas.requests import ZapiUserUpdate
from app.services.keys import KeyStore, generate_key

DESCRIPTION = "Setting Zapi user configuration"
KEY = re.compile(r"[a-zA-Z0-9]+")
MIN_KEY_LENGTH = 16  # keys set through the API; `randomkey` generates longer ones
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

    def change(self, body: Mapping[str, Any] | ZapiUserUpdate) -> Change:
        request = ZapiUserUpdate.parse(body, description=DESCRIPTION)
        key, status, random = request.key, request.status, request.randomkey

        params = dict(body) if isinstance(body, Mapping) else request.echo()
        if status == "disable":
            self.keys.disable()
        elif isinstance(key, str):
            if len(key) < MIN_KEY_LENGTH:
                raise BadRequest(
                    f"The key must have at least {MIN_KEY_LENGTH} characters.",
                    description=DESCRIPTION,
                )
            self.keys.set(key)
            params["key"] = MASK
        elif random == "true" or (status == "enable" and not self.keys.enabled()):
            generated = generate_key()
            self.keys.set(generated)
            params["key"] = generated
        return Change(params=params)
