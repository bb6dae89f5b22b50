"""Real races for the PostgreSQL concurrency tests: threads that wait on one barrier, then all call at once.

Each thread runs on its own database connection (Django's are per thread) and closes it when it is done, so
the test database can be dropped at the end. A call that raises does not stop the race: its exception stands
in the results in place of a value.

    results = race(20, lambda i: charge(member, key=f"job-{i}"))  # each thread's value or exception, in order
    results = race(10, lambda i: post_event(evt).status_code, check=True)  # fails the test if any raised
    results = race_all([approve, reject])  # different callables
    values, errors = split(results)  # what came back, and what was raised
"""

import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection


def race(n: int, fn: Callable[[int], Any], *, check: bool = False) -> list:
    """Call fn(i) for i in range(n), each in its own thread, all released by one barrier.

    Returns each thread's result, or the exception it raised, in index order. With check=True, asserts that no
    call raised (the message lists the exceptions) and returns the results."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[Exception] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:  # reported through the results (or the check below)
            results[i] = exc
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if check:
        assert not errors, errors
    return results


def race_all(fns: Sequence[Callable[[], Any]]) -> list:
    """race() for different zero-argument callables: fns[i]() in thread i; results (or exceptions) in order."""
    return race(len(fns), lambda i: fns[i]())


def split(results: list) -> tuple[list, list[Exception]]:
    """The results of a race as (the values returned, the exceptions raised), each in index order."""
    values = [r for r in results if not isinstance(r, Exception)]
    errors = [r for r in results if isinstance(r, Exception)]
    return values, errors
