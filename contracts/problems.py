"""Problems as values: what is wrong, where (a JSON pointer), and how bad."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about a payload: ``pointer`` locates it inside the notification."""

    pointer: str
    message: str
    severity: Severity = "error"
    code: str = "schema"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def as_dict(self) -> dict[str, str]:
        return {
            "pointer": self.pointer,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }


def join_pointer(base: str, *parts: object) -> str:
    """Append reference tokens to a JSON pointer, escaping ``~`` and ``/`` (RFC 6901)."""
    for part in parts:
        token = str(part).replace("~", "~0").replace("/", "~1")
        base = f"{base}/{token}"
    return base
