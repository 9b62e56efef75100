"""Retrying one source (tenacity) and the per-source circuit breaker."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from ..config import RetryPolicy, SourceHealth
from .failures import SourceFailure, classify

T = TypeVar("T")


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, SourceFailure) and exc.transient


class _Wait:
    """Full-jitter exponential backoff; a server's Retry-After wins (capped at max_seconds)."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self.jitter = wait_random_exponential(multiplier=policy.initial_seconds, max=policy.max_seconds)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, SourceFailure) and exc.retry_after is not None:
            return min(exc.retry_after, self.policy.max_seconds)
        return float(self.jitter(state))


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    on_retry: Callable[[int, SourceFailure, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, fails permanently, or ``policy.attempts`` are spent.

    Every exception is classified into a SourceFailure; the last one is
    raised. ``on_retry(attempt, failure, wait_seconds)`` runs before each wait.
    """

    def attempt() -> T:
        try:
            return fn()
        except SourceFailure:
            raise
        except Exception as exc:  # any client error becomes a classified failure
            raise classify(exc) from exc

    def before_sleep(state: RetryCallState) -> None:
        if on_retry and state.outcome is not None and state.next_action is not None:
            failure = state.outcome.exception()
            assert isinstance(failure, SourceFailure)
            on_retry(state.attempt_number, failure, state.next_action.sleep)

    retrying = Retrying(
        stop=stop_after_attempt(max(1, policy.attempts)),
        wait=_Wait(policy),
        retry=retry_if_exception(_is_transient),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    return retrying(attempt)


@dataclass
class _Circuit:
    failures: deque[float]
    open_until: float = 0.0


class SourceHealthBoard:
    """Counts recent failures per source key; skips a source for a cool-down once it fails too often."""

    def __init__(self, health: SourceHealth, clock: Callable[[], float] = time.monotonic):
        self.health = health
        self.clock = clock
        self._circuits: dict[str, _Circuit] = {}
        self._lock = threading.Lock()

    def _get(self, key: str) -> _Circuit:
        return self._circuits.setdefault(key, _Circuit(deque()))

    def open_for(self, key: str) -> float:
        """Seconds the source stays skipped; 0 when it may be tried."""
        with self._lock:
            left = self._get(key).open_until - self.clock()
            return max(0.0, left)

    def failed(self, key: str) -> bool:
        """Note a failure; True when it opened the circuit."""
        if self.health.failures <= 0:
            return False
        with self._lock:
            now = self.clock()
            circuit = self._get(key)
            circuit.failures.append(now)
            while circuit.failures and now - circuit.failures[0] > self.health.window_seconds:
                circuit.failures.popleft()
            if len(circuit.failures) >= self.health.failures:
                circuit.open_until = now + self.health.cooldown_seconds
                circuit.failures.clear()
                return True
            return False

    def succeeded(self, key: str) -> None:
        with self._lock:
            circuit = self._get(key)
            circuit.failures.clear()
            circuit.open_until = 0.0
