"""One line of the doctor's report."""

from __future__ import annotations

from dataclasses import dataclass

OK, INFO, WARN, FAIL = "ok", "info", "warn", "FAIL"


@dataclass(frozen=True)
class Check:
    status: str  # OK, INFO, WARN (works, but worth knowing) or FAIL (a run needs it and it is broken)
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"[{self.status:>4}] {self.name}: {self.detail}"
        return text + (f"\n       fix: {self.fix}" if self.fix and self.status in (WARN, FAIL) else "")
