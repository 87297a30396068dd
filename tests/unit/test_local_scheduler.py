import threading

import pytest

from s3stagger.local.scheduler import DispatcherScheduler, SlotAlreadyStarted, slot_name, slot_start


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_slot_names_are_deterministic_and_sortable() -> None:
    assert slot_name(0, 60) == "slot-19700101T000000Z"
    assert slot_name(1_795_700_000.0, 1) == "slot-20261126T133320Z"
    assert slot_name(1_795_700_000.25, 0.25) == "slot-20261126T133320250Z"


def test_slots_align_to_the_interval() -> None:
    assert slot_start(125.7, 60) == 120
    assert slot_start(125.7, 0.5) == 125.5


def test_each_slot_is_started_once() -> None:
    started: list[str] = []
    clock = FakeClock(1000.2)
    scheduler = DispatcherScheduler(started.append, interval_s=1, clock=clock)
    assert scheduler.tick() == "slot-19700101T001640Z"
    clock.now = 1000.9
    assert scheduler.tick() is None  # same slot
    clock.now = 1001.0
    assert scheduler.tick() == "slot-19700101T001641Z"
    assert started == ["slot-19700101T001640Z", "slot-19700101T001641Z"]
    assert scheduler.counters.started == 2


def test_a_slot_started_elsewhere_is_counted_not_failed() -> None:
    def already(name: str) -> None:
        raise SlotAlreadyStarted(name)

    scheduler = DispatcherScheduler(already, interval_s=1, clock=FakeClock(5.0))
    assert scheduler.tick() is None
    assert scheduler.counters.already_started == 1
    assert scheduler.counters.failed == 0


def test_a_failing_start_is_counted_and_the_scheduler_goes_on() -> None:
    calls: list[str] = []

    def flaky(name: str) -> None:
        calls.append(name)
        if len(calls) == 1:
            raise RuntimeError("emulator busy")

    clock = FakeClock(10.0)
    scheduler = DispatcherScheduler(flaky, interval_s=1, clock=clock)
    scheduler.tick()
    clock.now = 11.0
    scheduler.tick()
    assert scheduler.counters.failed == 1
    assert scheduler.counters.started == 1


def test_the_thread_starts_slots_and_stops_cleanly() -> None:
    seen = threading.Event()
    names: list[str] = []

    def record(name: str) -> None:
        names.append(name)
        if len(names) >= 2:
            seen.set()

    scheduler = DispatcherScheduler(record, interval_s=0.05)
    scheduler.start()
    with pytest.raises(RuntimeError, match="already running"):
        scheduler.start()
    assert seen.wait(10)
    scheduler.stop()
    count = len(names)
    assert len(set(names)) == count  # never the same slot twice
    assert not any(t.name == "s3stagger-scheduler" for t in threading.enumerate())


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s=0"):
        DispatcherScheduler(lambda name: None, interval_s=0)
