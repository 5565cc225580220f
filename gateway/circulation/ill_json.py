"""ISO 18626 messages (ill_types) as JSON, for the outgoing-message outbox.

The outbox keeps a message as the engine built it, so that the sender (ill/ front-end) encodes
exactly that, however long it waits. The encoding follows the dataclasses' own fields: a
message is `{"type": "<class>", "value": {...}}`, times are our stamps' ISO 8601 form with
their offset, enums their wire words, tuples lists.
"""

from __future__ import annotations

import json
import types
from dataclasses import fields, is_dataclass
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, Union, get_args, get_origin, get_type_hints

from gateway.circulation.ill_types import (
    Confirmation,
    Message,
    Request,
    RequestingAgencyMessage,
    SupplyingAgencyMessage,
)

MESSAGE_TYPES: dict[str, type] = {
    cls.__name__: cls for cls in (Request, SupplyingAgencyMessage, RequestingAgencyMessage)
}


class MessageJsonError(ValueError):
    """Stored JSON that is not one of our messages (a bug or a hand-edited row)."""


def to_json(message: Message | Confirmation) -> str:
    name = type(message).__name__
    return json.dumps({"type": name, "value": _encode(message)}, ensure_ascii=False, sort_keys=True)


def from_json(text: str) -> Message:
    data = json.loads(text)
    cls = MESSAGE_TYPES.get(data.get("type", "")) if isinstance(data, dict) else None
    if cls is None:
        raise MessageJsonError(f"not an ISO 18626 message: {text[:80]!r}")
    decoded: Message = _decode(cls, data["value"])
    return decoded


def confirmation_from_json(text: str) -> Confirmation:
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("type") != "Confirmation":
        raise MessageJsonError(f"not a confirmation: {text[:80]!r}")
    decoded: Confirmation = _decode(Confirmation, data["value"])
    return decoded


def _encode(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _decode(kind: Any, value: Any) -> Any:
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = get_args(kind)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                return _decode(option, value)
    if origin is tuple:
        args = get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if isinstance(kind, type):
        if issubclass(kind, Enum):
            return kind(value)
        if kind is datetime:
            return datetime.fromisoformat(value)
        if is_dataclass(kind):
            hints = _hints(kind)
            return kind(
                **{
                    f.name: _decode(hints[f.name], value[f.name])
                    for f in fields(kind)
                    if f.name in value
                }
            )
    return value
