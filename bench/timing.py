"""Timing helpers: SQL time and query count through `connection.execute_wrapper`, medians."""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection


@dataclass
class SqlLog:
    """Every statement run while active: how many and how long (seconds, summed)."""

    count: int = 0
    seconds: float = 0.0
    statements: list[str] = field(default_factory=list)
    keep: bool = False

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start
            self.count += 1
            if self.keep:
                self.statements.append(sql)


@contextmanager
def sql_log(keep: bool = False):
    log = SqlLog(keep=keep)
    with connection.execute_wrapper(log):
        yield log


def median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 3)


def repeat(fn, runs: int, warmup: int = 2) -> list:
    """Calls fn() warmup + runs times and returns the last `runs` results."""
    for _ in range(warmup):
        fn()
    return [fn() for _ in range(runs)]


def time_sql(sql: str, params, runs: int) -> float:
    """Median seconds of a hand-written statement (execute + fetch), timed like the pages' SQL."""

    def once():
        with sql_log() as log, connection.cursor() as cur:
            cur.execute(sql, params)
            cur.fetchall()
        return log.seconds

    return statistics.median(repeat(once, runs))
