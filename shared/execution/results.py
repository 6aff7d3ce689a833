"""How a run ended, whatever ran it (a process, an HTTP request), and the tail of its output."""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.states import Status


def NEVER() -> bool:  # noqa: N802 - reads as a constant: "cancelled=NEVER"
    return False


@dataclass(frozen=True)
class ExecutionResult:
    """How a run ended. ``status`` is SUCCESS, FAILED or CANCELLED."""

    status: Status
    exit_code: int | None
    stdout: str
    stderr: str
    error: str = ""

    @classmethod
    def without_run(cls, status: Status, why: str) -> ExecutionResult:
        """The result of a task that did not run (refused, cancelled before it started, or
        it could not start): no exit code, no output, only ``why``."""
        return cls(status, None, "", "", why)

    def as_fields(self) -> dict[str, object]:
        """The hash fields this result writes."""
        fields: dict[str, object] = {"stdout": self.stdout, "stderr": self.stderr}
        if self.exit_code is not None:
            fields["exitCode"] = self.exit_code
        if self.error:
            fields["error"] = self.error
        return fields


class TailBuffer:
    """Keeps the last ``limit`` bytes written to it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def write(self, chunk: bytes) -> None:
        self.data += chunk
        overflow = len(self.data) - self.limit
        if overflow > 0:
            del self.data[:overflow]
            self.dropped += overflow

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")
        return f"[{self.dropped} bytes cut]\n{text}" if self.dropped else text
