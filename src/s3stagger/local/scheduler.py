"""The local stand-in for EventBridge Scheduler: starts the dispatcher on its schedule.

On AWS a schedule (``dispatcher.json`` ``schedule_expression``) starts the dispatcher state
machine. Locally this thread does, every ``interval_s``, naming each execution after its slot
(``slot-20261126T141500Z``, with milliseconds when the interval is below a second). A name can
start only once per state machine, so a slot never gets two dispatchers; the state machine itself
yields when another dispatcher is already running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

LOGGER = logging.getLogger(__name__)

StartExecution = Callable[[str], None]
"""Starts one dispatcher execution with the given name; raises if it cannot."""


class SlotAlreadyStarted(Exception):
    """The execution of this slot exists already (not an error: the slot is served)."""


def slot_name(slot_start_epoch_s: float, interval_s: float) -> str:
    """Deterministic execution name of the slot starting at ``slot_start_epoch_s``."""
    whole = int(slot_start_epoch_s)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(whole))
    if interval_s >= 1:
        return f"slot-{stamp}Z"
    millis = round((slot_start_epoch_s - whole) * 1000) % 1000
    return f"slot-{stamp}{millis:03d}Z"


def slot_start(now_epoch_s: float, interval_s: float) -> float:
    """Start of the slot ``now_epoch_s`` falls in (slots are aligned to multiples of the interval)."""
    return (now_epoch_s // interval_s) * interval_s


@dataclass
class SchedulerCounters:
    started: int = 0
    already_started: int = 0
    failed: int = 0


class DispatcherScheduler:
    """A thread that calls ``start_execution(slot_name)`` once per slot until stopped."""

    def __init__(
        self,
        start_execution: StartExecution,
        interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s={interval_s} must be > 0")
        self._start_execution = start_execution
        self.interval_s = interval_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._counters = SchedulerCounters()
        self._last_slot: str | None = None

    @property
    def counters(self) -> SchedulerCounters:
        with self._lock:
            return SchedulerCounters(**self._counters.__dict__)

    def tick(self) -> str | None:
        """Start the current slot's execution unless this scheduler already did; its name or None."""
        name = slot_name(slot_start(self._clock(), self.interval_s), self.interval_s)
        if name == self._last_slot:
            return None
        self._last_slot = name
        try:
            self._start_execution(name)
        except SlotAlreadyStarted:
            with self._lock:
                self._counters.already_started += 1
            return None
        except Exception:
            LOGGER.exception("scheduler: starting dispatcher %s failed", name)
            with self._lock:
                self._counters.failed += 1
            return None
        with self._lock:
            self._counters.started += 1
        return name

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the scheduler is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="s3stagger-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            now = self._clock()
            next_slot = slot_start(now, self.interval_s) + self.interval_s
            self._stop.wait(max(0.01, next_slot - now))
