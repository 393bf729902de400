"""Keyed work queue for the stand-in's workers (the shape of client-go's workqueue)."""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque


class WorkQueue:
    """Keyed work queue: a key is never processed by two workers at once, re-adds while
    processing are coalesced into one more pass, and `add_after` schedules a later pass."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._timers: list[tuple[float, str]] = []
        self._closed = False

    def add(self, key: str) -> None:
        with self._cv:
            if key in self._processing:
                self._dirty.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)
                self._cv.notify()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            return self.add(key)
        with self._cv:
            heapq.heappush(self._timers, (time.monotonic() + delay, key))
            self._cv.notify_all()

    def get(self) -> str | None:
        with self._cv:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, key = heapq.heappop(self._timers)
                    if key in self._processing:
                        self._dirty.add(key)
                    elif key not in self._queued:
                        self._queued.add(key)
                        self._queue.append(key)
                if self._queue:
                    key = self._queue.popleft()
                    self._queued.discard(key)
                    self._processing.add(key)
                    return key
                wait = self._timers[0][0] - now if self._timers else 1.0
                self._cv.wait(timeout=min(max(wait, 0.005), 1.0))

    def done(self, key: str) -> None:
        with self._cv:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._queued.add(key)
                self._queue.append(key)
                self._cv.notify()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def __len__(self) -> int:
        with self._cv:
            return len(self._queue) + len(self._timers)
