#!/usr/bin/env python3
"""One load-generator process for bench/streams: holds many concurrent SSE streams.

Started by bench/streams/run.py, several at once, each with its share of the streams (the
spec is a JSON file written by run.py's run_load). One asyncio protocol per connection (uvloop
when installed; bytes are parsed in data_received, so an event costs no task wake-up),
HTTP/1.1 written by hand, chunked transfer decoding, and no JSON parsing on the hot path: a
content chunk is a `data:` line whose `"content":"` is not empty. Times are time.monotonic().

Per stream it records the status, the time from the start of connect to the first content
chunk (TTFT), the gaps between content chunks (count, sum, how many under 1 ms, and a
histogram in whole milliseconds shared by the process), whether `[DONE]` arrived, and the
code of an SSE error event or of a non-200 answer. One stream in ten (by index; configurable)
hangs up on purpose: it closes its socket after `hangup_after` content chunks (run.py passes
half the answer's length).

Everything is bounded: each stream by `timeout_s` from its own start, the process by
`deadline_s`. Prints one JSON object on stdout.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

CONTENT = b'"content":"'
MAX_HEAD = 64 * 1024
MAX_ERROR_BODY = 64 * 1024
GAP_BINS = 2001  # whole milliseconds, the last bin is "2000 ms or more"


class ChunkedDecoder:
    """Transfer-Encoding: chunked, fed whatever arrived; appends the payload to `out`."""

    SIZE, DATA, CRLF = 0, 1, 2

    def __init__(self) -> None:
        self.state = self.SIZE
        self.left = 0
        self.finished = False

    def feed(self, raw: bytearray, out: bytearray) -> None:
        while raw and not self.finished:
            if self.state == self.SIZE:
                i = raw.find(b"\r\n")
                if i < 0:
                    if len(raw) > 1024:
                        raise ValueError("chunk size line too long")
                    return
                size = int(bytes(raw[:i]).split(b";")[0].strip() or b"0", 16)
                del raw[: i + 2]
                if size == 0:
                    self.finished = True
                    return
                self.left = size
                self.state = self.DATA
            elif self.state == self.DATA:
                take = min(self.left, len(raw))
                out += raw[:take]
                del raw[:take]
                self.left -= take
                if self.left == 0:
                    self.state = self.CRLF
            else:
                if len(raw) < 2:
                    return
                del raw[:2]
                self.state = self.SIZE


def error_code(payload: bytes) -> str:
    """The `code` (else `type`) of an OpenAI-shaped error body; 'unparsed' if there is none."""
    try:
        err = json.loads(payload).get("error")
        if isinstance(err, dict):
            return str(err.get("code") or err.get("type") or "no_code")[:64]
        return "no_code"
    except (ValueError, AttributeError):
        return "unparsed"


class StreamClient(asyncio.Protocol):
    """One SSE stream, parsed in data_received: no task wake-up per event."""

    def __init__(self, spec: dict[str, Any], rec: dict[str, Any], t0: float, hangup: bool, gaps: list[int]):
        self.spec, self.rec, self.t0, self.hangup, self.gaps = spec, rec, t0, hangup, gaps
        self.hangup_after = max(1, spec["hangup_after"])
        self.finished = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.in_body = False
        self.decoder: ChunkedDecoder | None = None
        self.raw = bytearray()
        self.body = bytearray()
        self.error_body: bytearray | None = None
        self.last: float | None = None
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.rec["connect_s"] = time.monotonic() - self.t0
        self.transport.write(self.spec["request_bytes"])

    def connection_lost(self, exc: Exception | None) -> None:
        rec = self.rec
        if self.error_body is not None:
            self._finish_error()
        elif not rec["done"] and not rec["hung_up"] and rec["error_code"] is None and rec["failure"] is None:
            rec["failure"] = "eof_before_done" if self.in_body else ("reset" if exc else "eof_before_status")
        if not self.finished.done():
            self.finished.set_result(None)

    def _end(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _finish_error(self) -> None:
        body = bytes(self.error_body or b"")
        if self.decoder is not None:
            out = bytearray()
            try:
                ChunkedDecoder().feed(bytearray(body), out)
            except ValueError:
                pass
            body = bytes(out)
        self.rec["error_code"] = error_code(body)
        self.error_body = None

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        rec = self.rec
        self.received += len(data)
        if self.received > self.spec["max_bytes"]:
            rec["failure"] = "too_many_bytes"
            self._end()
            return
        if not self.in_body:
            self.head += data
            at = self.head.find(b"\r\n\r\n")
            if at < 0:
                if len(self.head) > MAX_HEAD:
                    rec["failure"] = "header_too_long"
                    self._end()
                return
            lines = bytes(self.head[:at]).split(b"\r\n")
            data = bytes(self.head[at + 4:])
            self.head = bytearray()
            self.in_body = True
            try:
                rec["status"] = int(lines[0].split()[1])
                rec["head_s"] = now - self.t0
            except (IndexError, ValueError):
                rec["failure"] = "bad_status_line"
                self._end()
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip().lower()
            if headers.get(b"transfer-encoding", b"").endswith(b"chunked"):
                self.decoder = ChunkedDecoder()
            if rec["status"] != 200:
                self.error_body = bytearray()
                self.length = int(headers.get(b"content-length", b"-1") or -1)
        if self.error_body is not None:
            self.error_body += data
            if len(self.error_body) >= MAX_ERROR_BODY or (self.length >= 0 and len(self.error_body) >= self.length) \
                    or (self.decoder is not None and self.error_body.endswith(b"0\r\n\r\n")):
                self._finish_error()
                self._end()
            return
        body = self.body
        if self.decoder is not None and not self.raw and not body and self.decoder.state == ChunkedDecoder.SIZE:
            # Fast path: the read is exactly one chunk holding one whole event (the usual case
            # for paced streams), so no buffering and no decoder state.
            i = data.find(b"\r\n")
            if 0 < i <= 8:
                try:
                    size = int(data[:i], 16)
                except ValueError:
                    size = -1
                if size > 2 and len(data) == i + size + 4 and data.endswith(b"\n\n\r\n") \
                        and data.count(b"\n", i + 2) == 3:
                    self._line(data[i + 2:i + size], now)
                    self._after_events()
                    return
        if self.decoder is None:
            body += data
        else:
            self.raw += data
            try:
                self.decoder.feed(self.raw, body)
            except ValueError:
                rec["failure"] = "bad_chunking"
                self._end()
                return
        start = 0
        while True:
            nl = body.find(b"\n", start)
            if nl < 0:
                break
            line = body[start:nl]
            start = nl + 1
            if line.startswith(b"data:"):
                self._line(line, now)
        if start:
            del body[:start]
        self._after_events()

    def _line(self, line: bytes | bytearray, now: float) -> None:
        """One `data:` line."""
        rec = self.rec
        rec["events"] += 1
        at = line.find(CONTENT)
        if at >= 0 and line[at + 11:at + 12] != b'"':
            rec["chunks"] += 1
            if self.last is None:
                rec["ttft"] = now - self.t0
            else:
                gap = now - self.last
                rec["gap_n"] += 1
                rec["gap_sum"] += gap
                if gap < 0.001:
                    rec["bunched"] += 1
                self.gaps[min(int(gap * 1000), GAP_BINS - 1)] += 1
            self.last = now
        elif line.startswith(b"data: [DONE]") or line.startswith(b"data:[DONE]"):
            rec["done"] = True
        elif b'"error"' in line:
            rec["error_code"] = error_code(bytes(line[5:]))

    def _after_events(self) -> None:
        rec = self.rec
        if self.hangup and rec["chunks"] >= self.hangup_after and not rec["done"]:
            rec["hung_up"] = True
            self._end()
        elif self.decoder is not None and self.decoder.finished:
            self._end()
        elif self.decoder is None and rec["done"]:
            self._end()


async def one_stream(spec: dict[str, Any], index: int, start_at: float, gaps: list[int]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    hangup_every = spec["hangup_every"]
    hangup = hangup_every > 0 and index % hangup_every == hangup_every // 2
    rec: dict[str, Any] = {"i": index, "status": None, "ttft": None, "chunks": 0, "events": 0, "gap_n": 0,
                           "gap_sum": 0.0, "bunched": 0, "done": False, "hung_up": False, "planned_hangup": hangup,
                           "error_code": None, "failure": None, "connect_s": None, "head_s": None}
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    t0 = time.monotonic()
    proto = StreamClient(spec, rec, t0, hangup, gaps)
    try:
        async def run() -> None:
            await loop.create_connection(lambda: proto, spec["host"], spec["port"])
            await proto.finished

        await asyncio.wait_for(run(), timeout=spec["timeout_s"])
    except asyncio.TimeoutError:
        rec["failure"] = "timeout"
    except OSError as exc:
        rec["failure"] = type(exc).__name__
    finally:
        if proto.transport is not None:
            proto.transport.abort() if rec["failure"] == "timeout" else proto.transport.close()
    rec["elapsed"] = time.monotonic() - t0
    return rec


async def main_async(spec: dict[str, Any]) -> dict[str, Any]:
    # The spec's start time is wall-clock (shared by every process); convert once. Stream times
    # use time.monotonic(): uvloop's loop.time() is cached per iteration, in whole milliseconds.
    offset = time.monotonic() - time.time()
    start = spec["start_epoch"] + offset
    total, ramp = spec["total"], spec["ramp_s"]
    gaps = [0] * GAP_BINS
    tasks = [asyncio.ensure_future(one_stream(spec, i, start + ramp * i / max(1, total), gaps))
             for i in spec["indices"]]
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, spec["deadline_s"] - (time.time() - spec["start_epoch"])))
    for t in pending:
        t.cancel()
    records = [t.result() for t in done if not t.cancelled() and t.exception() is None]
    lost = len(tasks) - len(records)
    return {"records": records, "gap_histogram_ms": gaps, "lost": lost}


def main() -> int:
    spec = json.loads(open(sys.argv[1]).read())
    spec["request_bytes"] = spec["request"].encode()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop_name = "asyncio"
    try:
        import uvloop  # type: ignore

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        pass
    wall0 = time.monotonic()
    out = asyncio.run(main_async(spec))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = usage.ru_utime + usage.ru_stime
    out["wall_s"] = time.monotonic() - wall0
    out["active_s"] = time.time() - spec["start_epoch"]
    out["loop"] = loop_name
    out["nofile"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    for r in out["records"]:
        r.pop("start", None)
    json.dump(out, sys.stdout, separators=(",", ":"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
