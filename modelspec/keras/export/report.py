"""The problems an export finds, collected: errors refuse the model, warnings go with the spec."""

from __future__ import annotations

from ...errors import Problem


class Report:
    """Problems found while exporting one model, each at its path in the spec.

    Args:
        file: How problems name the model (its file, or ``<model NAME>``).
    """

    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def error(self, path: tuple, code: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(tuple(path), message, self.file, hint=hint, code=code))

    def warning(self, path: tuple, code: str, message: str, hint: str | None = None) -> None:
        problem = Problem(tuple(path), message, self.file, hint=hint, severity="warning", code=code)
        if problem not in self.problems:  # a class used by many layers is named once
            self.problems.append(problem)

    @property
    def failed(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]
