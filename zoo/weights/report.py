"""The load report: what a weights load did to every variable, in plain data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class LoadReport:
    """One weights load: where from, and what happened to each variable.

    ``matched`` pairs a model variable with the source entry it was loaded from;
    ``skipped`` are source entries left out on purpose (``skip`` patterns); ``missing``
    are model variables nothing was loaded into; ``unexpected`` are source entries that
    matched no variable; ``shape_mismatched`` could not be loaded; ``adapted`` were
    loaded after a documented change of shape (a first convolution given new channels).
    """

    source: str
    kind: str
    matched: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(
        default_factory=list
    )
    adapted: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every model variable received a value."""
        return not self.missing and not self.shape_mismatched

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["complete"] = self.complete
        return data

    def summary(self) -> str:
        """A one-line account, as printed after a load."""
        parts = [
            f"{len(self.matched)} matched",
            f"{len(self.skipped)} skipped",
            f"{len(self.missing)} missing",
            f"{len(self.unexpected)} unexpected",
            f"{len(self.shape_mismatched)} shape-mismatched",
            f"{len(self.adapted)} adapted",
        ]
        return f"{self.kind} {self.source}: " + ", ".join(parts)

    def lines(self, limit: int = 20) -> list[str]:
        """The report as text: the summary, then each non-empty category."""
        out = [self.summary()]
        sections: list[tuple[str, list[str]]] = [
            ("adapted", [f"{name}: {how}" for name, how in self.adapted]),
            (
                "shape-mismatched",
                [f"{n}: source {list(s)} vs model {list(m)}" for n, s, m in self.shape_mismatched],
            ),
            ("missing (left at their initial values)", self.missing),
            ("unexpected (in the source, not in the model)", self.unexpected),
            ("skipped", self.skipped),
            ("notes", self.notes),
        ]
        for title, items in sections:
            if not items:
                continue
            out.append(f"{title}:")
            out += [f"  {item}" for item in items[:limit]]
            if len(items) > limit:
                out.append(f"  ... and {len(items) - limit} more")
        return out
