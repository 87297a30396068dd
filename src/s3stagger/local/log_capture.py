"""What the functions write, as CloudWatch Logs would receive it: the local Lambda runtime's log capture.

On AWS the Lambda runtime sends what a function writes to stdout and stderr to its log group
(``/aws/lambda/<function>``), one log event per line. Locally the handlers run on threads of this
process, so :class:`LambdaLogCapture` tees the process's output: every line written by a thread that
is running an invocation (:func:`~s3stagger.local.lambda_runtime.current_invocation`) becomes a
:class:`CapturedLine` of that function's log group and stream; everything still reaches where it was
going (the demo's log file, the terminal). It covers ``print`` (Powertools' EMF lines) and the
logging handlers that write to stdout or stderr (Powertools' JSON logger), including loggers created
while it is installed.

Each consumer (the subscription-filter stand-in, the EMF extraction) reads its own copy of the lines
with :meth:`LambdaLogCapture.consumer`.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, TextIO

from s3stagger.local.lambda_runtime import LambdaContext, current_invocation


@dataclass(frozen=True)
class CapturedLine:
    function_name: str
    log_group: str
    log_stream: str
    timestamp_ms: int
    message: str


class CapturedLines:
    """One consumer's queue of captured lines."""

    def __init__(self) -> None:
        self._lines: deque[CapturedLine] = deque()

    def add(self, line: CapturedLine) -> None:
        self._lines.append(line)

    def drain(self) -> list[CapturedLine]:
        drained: list[CapturedLine] = []
        while self._lines:
            drained.append(self._lines.popleft())
        return drained


class _InvocationOutputTee(io.TextIOBase):
    """Writes through to ``target``; also hands what an invocation's thread writes to the capture."""

    def __init__(self, target: TextIO, capture: LambdaLogCapture) -> None:
        super().__init__()
        self.target = target
        self._capture = capture

    def write(self, text: str) -> int:
        self.target.write(text)
        context = current_invocation()
        if context is not None:
            self._capture.note(context, text)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def fileno(self) -> int:
        return self.target.fileno()

    def isatty(self) -> bool:
        return self.target.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.target, "encoding", "utf-8"))


class LambdaLogCapture:
    """Installed with :meth:`install` (or ``with``); thread-safe."""

    def __init__(self, clock_ms: Any = None) -> None:
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._lock = threading.Lock()
        self._partial: dict[int, str] = {}
        self._consumers: list[CapturedLines] = []
        self._lines_written: Counter[str] = Counter()
        self._saved: dict[str, TextIO] = {}
        self._retargeted: list[tuple[logging.StreamHandler[Any], Any]] = []

    def consumer(self) -> CapturedLines:
        """A new queue that receives every line captured from now on."""
        lines = CapturedLines()
        with self._lock:
            self._consumers.append(lines)
        return lines

    def lines_written(self) -> dict[str, int]:
        """Lines captured so far, by function name."""
        with self._lock:
            return dict(self._lines_written)

    # -- installation -----------------------------------------------------------------------------
    def install(self) -> LambdaLogCapture:
        originals = {id(sys.__stdout__), id(sys.__stderr__)}
        for name in ("stdout", "stderr"):
            stream: TextIO = getattr(sys, name)
            originals.add(id(stream))
            self._saved[name] = stream
            setattr(sys, name, _InvocationOutputTee(stream, self))
        loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        for logger in loggers:
            for handler in getattr(logger, "handlers", []):
                if (
                    isinstance(handler, logging.StreamHandler)
                    and not isinstance(handler, logging.FileHandler)
                    and id(handler.stream) in originals
                ):
                    self._retargeted.append((handler, handler.stream))
                    handler.setStream(_InvocationOutputTee(handler.stream, self))
        return self

    def uninstall(self) -> None:
        for name, stream in self._saved.items():
            current = getattr(sys, name)
            if isinstance(current, _InvocationOutputTee) and current.target is stream:
                setattr(sys, name, stream)
        self._saved.clear()
        for handler, stream in self._retargeted:
            handler.setStream(stream)
        self._retargeted.clear()

    def __enter__(self) -> LambdaLogCapture:
        return self.install()

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    # -- capture ----------------------------------------------------------------------------------
    def note(self, context: LambdaContext, text: str) -> None:
        """Take what an invocation wrote; each complete non-blank line is one log event."""
        thread = threading.get_ident()
        now = self._clock_ms()
        with self._lock:
            pending = self._partial.pop(thread, "") + text
            *complete, rest = pending.split("\n")
            if rest:
                self._partial[thread] = rest
            for message in complete:
                if not message.strip():
                    continue
                line = CapturedLine(
                    context.function_name, context.log_group_name, context.log_stream_name, now, message
                )
                self._lines_written[context.function_name] += 1
                for consumer in self._consumers:
                    consumer.add(line)
