"""Quotas, checked before a request goes to a model: requests/min, tokens/min, daily tokens, monthly USD.

Requests/min and tokens/min use the maintained ``limits`` library (PyPI ``limits``):
its moving-window strategy counts exactly the last 60 s (a fixed window lets a client
send twice its limit across a minute boundary), its ``cost=`` argument charges a request
its tokens, and its storage backends (``async+memory://``, ``async+redis://``,
``async+memcached://``, ...) let several gateway processes share one count by changing a
URI, with no code of ours to get wrong.

Tokens/min follow OpenAI's own rule: a request is charged up front for its prompt
estimate (body bytes / 4) plus its ``max_tokens`` (``default_max_tokens`` when it names
none), so nothing that could exceed the limit starts; when vLLM's ``usage`` says it used
more than that (only possible without ``max_tokens``), the difference is charged after.
A moving window cannot take charges back, so a request that used less keeps its
reservation for its minute: the count errs towards refusing, never towards letting more
through.

Daily tokens and the monthly dollar budget read the usage ledger (what vLLM reported,
GPU time priced from the fleet's price table), plus the reservations of this process's
requests still running.

Overshoot when several gateway processes share a quota:
- requests/min, tokens/min with the default ``async+memory://``: each process counts
  alone, so N processes admit up to N x the limit; a shared backend (``async+redis://``)
  makes it exact;
- daily tokens: other processes' usage arrives through the ledger at their next flush and
  their running requests are not seen, so the overshoot is at most what the other
  processes admitted within one ledger flush interval plus their requests in flight;
- monthly USD: the cost of a request is known only when it ends, so the budget can be
  passed by the cost of the requests running when it runs out (in every process).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from modelfleet.gateway.keys import KeyRecord
from modelfleet.gateway.ledger import UsageLedger


@dataclass(frozen=True)
class QuotaExceeded(Exception):
    """A quota refuses the request: which limit, a message naming it, and when to retry."""

    limit: str
    message: str
    retry_after: int


@dataclass
class Reservation:
    """What an admitted request holds until it ends."""

    key: str
    tokens: int


class Quotas:
    """Admits or refuses requests by their key's quotas, and settles them with what they used."""

    def __init__(self, storage_uri: str, ledger: UsageLedger) -> None:
        storage = storage_from_string(storage_uri)
        self.limiter = MovingWindowRateLimiter(storage)  # type: ignore[arg-type]
        self.ledger = ledger
        self._in_flight: dict[str, int] = defaultdict(int)

    async def admit(self, record: KeyRecord, tokens: int, *, today: date | None = None) -> Reservation:
        """Reserve one request and ``tokens`` for ``record``'s key, or raise ``QuotaExceeded``."""
        limits, name = record.limits, record.name
        day = today or datetime.now(UTC).date()
        if limits.monthly_usd is not None:
            spent = self.ledger.cost_in_month(day, name)
            if spent >= limits.monthly_usd:
                raise QuotaExceeded(
                    "monthly_usd",
                    f"monthly budget reached for key {name!r}: ${spent:.4f} of ${limits.monthly_usd:.2f} spent "
                    "this month (UTC); raise it with a new key or wait for the next month",
                    _seconds_until(_next_month(day)),
                )
        if limits.daily_tokens is not None:
            used = self.ledger.tokens_on(day, name) + self._in_flight[name]
            if used + tokens > limits.daily_tokens:
                raise QuotaExceeded(
                    "daily_tokens",
                    f"daily token limit reached for key {name!r}: {used} used or reserved + {tokens} requested "
                    f"> {limits.daily_tokens} per UTC day",
                    _seconds_until(day + timedelta(days=1)),
                )
        checks: list[tuple[str, RateLimitItem, int, str]] = []
        if limits.rpm is not None:
            checks.append(("requests_per_minute", RateLimitItemPerMinute(limits.rpm), 1, "requests per minute"))
        if limits.tpm is not None:
            if tokens > limits.tpm:
                raise QuotaExceeded(
                    "tokens_per_minute",
                    f"request needs {tokens} tokens (prompt estimate + max_tokens), over key {name!r}'s "
                    f"limit of {limits.tpm} tokens per minute: lower max_tokens",
                    60,
                )
            checks.append(("tokens_per_minute", RateLimitItemPerMinute(limits.tpm), tokens, "tokens per minute"))
        # Test every window before charging any, so a refusal by one does not use up another.
        for limit, item, cost, words in checks:
            if not await self.limiter.test(item, name, limit, cost=cost):
                raise await self._refusal(limit, item, name, words)
        for limit, item, cost, words in checks:
            if not await self.limiter.hit(item, name, limit, cost=cost):
                raise await self._refusal(limit, item, name, words)
        self._in_flight[name] += tokens
        return Reservation(name, tokens)

    async def settle(self, reservation: Reservation, record: KeyRecord, used_tokens: int) -> None:
        """The request ended having used ``used_tokens``; charge any excess over its reservation."""
        self._in_flight[reservation.key] -= reservation.tokens
        if self._in_flight[reservation.key] <= 0:
            del self._in_flight[reservation.key]
        excess = used_tokens - reservation.tokens
        if excess > 0 and record.limits.tpm is not None:
            # Best effort: a window already full refuses the charge, and the next request is refused anyway.
            item = RateLimitItemPerMinute(record.limits.tpm)
            await self.limiter.hit(item, reservation.key, "tokens_per_minute", cost=min(excess, record.limits.tpm))

    async def _refusal(self, limit: str, item: RateLimitItem, key: str, words: str) -> QuotaExceeded:
        stats = await self.limiter.get_window_stats(item, key, limit)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return QuotaExceeded(
            limit,
            f"rate limit reached for key {key!r} on {words}: limit {item.amount}, remaining {stats.remaining}; "
            f"retry after {retry_after} s",
            retry_after,
        )


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _seconds_until(day: date) -> int:
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return max(1, math.ceil((midnight - datetime.now(UTC)).total_seconds()))
