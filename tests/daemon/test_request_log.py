"""Log lines written while a request runs carry its id and method, and only while it runs."""

from __future__ import annotations

import asyncio

from sessiond.daemon.request_log import add_request, enter_request, leave_request


def test_a_line_carries_the_request_it_was_written_for() -> None:
    assert add_request(None, "info", {"event": "x"}) == {"event": "x"}
    token = enter_request(7, "sessions.patch")
    try:
        line = add_request(None, "warning", {"event": "conflict"})
        assert line == {"event": "conflict", "req": 7, "method": "sessions.patch"}
        own = add_request(None, "error", {"event": "e", "method": "sessions.get", "req": 1})
        assert (own["req"], own["method"]) == (1, "sessions.get")  # a line's own are kept
    finally:
        leave_request(token)
    assert "req" not in add_request(None, "info", {"event": "after"})


def test_concurrent_requests_each_log_their_own() -> None:
    async def request(ident: int, seen: dict[int, object]) -> None:
        token = enter_request(ident, f"m{ident}")
        try:
            await asyncio.sleep(0.01 * (3 - ident))  # interleaved with the others
            seen[ident] = add_request(None, "info", {"event": "x"})["req"]
        finally:
            leave_request(token)

    async def main() -> dict[int, object]:
        seen: dict[int, object] = {}
        await asyncio.gather(*(request(i, seen) for i in range(3)))
        return seen

    assert asyncio.run(main()) == {0: 0, 1: 1, 2: 2}
