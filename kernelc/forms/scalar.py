"""The ``Scalar`` form: a task no data-parallel form describes, run as plain sequential code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scalar:
    reason: str  # why no other form fits, for reports and messages
