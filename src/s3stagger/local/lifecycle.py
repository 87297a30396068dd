"""What every local service shares: started and stopped around a ``with`` block."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class LocalService(ABC):
    """A service local mode runs in this process (emulator, simulator, stack): ``with`` starts it
    and stops it, whatever happens inside."""

    @abstractmethod
    def start(self) -> Self:
        """Start serving; returns the service itself."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving and release what was taken; safe to call twice."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
