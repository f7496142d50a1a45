#!/usr/bin/env python3
"""One load-generator process for bench/streams: holds many concurrent SSE streams.

Started by bench/streams/run.py, several at once, each with its share of the streams (it
can be run by hand too: `loadgen.py SPEC.json`, see `Spec` below). Plain asyncio streams
(uvloop when installed), HTTP/1.1 written by hand, chunked transfer decoding, and no JSON
parsing on the hot path: a content chunk is a `data:` line whose `"content":"` is not empty.

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


async def one_stream(spec: dict[str, Any], index: int, start_at: float, gaps: list[int]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    hangup_every = spec["hangup_every"]
    hangup = hangup_every > 0 and index % hangup_every == hangup_every // 2
    hangup_after = max(1, spec["hangup_after"])
    rec: dict[str, Any] = {"i": index, "status": None, "ttft": None, "chunks": 0, "events": 0, "gap_n": 0,
                           "gap_sum": 0.0, "bunched": 0, "done": False, "hung_up": False, "planned_hangup": hangup,
                           "error_code": None, "failure": None}
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    t0 = loop.time()
    rec["start"] = t0
    writer = None
    try:
        async def run() -> None:
            nonlocal writer
            reader, writer = await asyncio.open_connection(spec["host"], spec["port"], limit=MAX_HEAD)
            writer.write(spec["request"].encode())
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            rec["status"] = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip().lower()
            chunked = headers.get(b"transfer-encoding", b"").endswith(b"chunked")
            length = int(headers[b"content-length"]) if b"content-length" in headers else None
            if rec["status"] != 200:
                body = await reader.read(min(length or MAX_ERROR_BODY, MAX_ERROR_BODY)) if length != 0 else b""
                if chunked:
                    out = bytearray()
                    ChunkedDecoder().feed(bytearray(body), out)
                    body = bytes(out)
                rec["error_code"] = error_code(body)
                return
            decoder = ChunkedDecoder() if chunked else None
            raw = bytearray()
            body = bytearray()
            last = None
            received = 0
            while True:
                data = await reader.read(65536)
                now = loop.time()
                if not data:
                    break
                if decoder is None:
                    body += data
                else:
                    raw += data
                    decoder.feed(raw, body)
                start = 0
                while True:
                    nl = body.find(b"\n", start)
                    if nl < 0:
                        break
                    line = body[start:nl]
                    start = nl + 1
                    if not line.startswith(b"data:"):
                        continue
                    rec["events"] += 1
                    at = line.find(CONTENT)
                    if at >= 0 and line[at + 11:at + 12] != b'"':
                        rec["chunks"] += 1
                        if last is None:
                            rec["ttft"] = now - t0
                        else:
                            gap = now - last
                            rec["gap_n"] += 1
                            rec["gap_sum"] += gap
                            if gap < 0.001:
                                rec["bunched"] += 1
                            gaps[min(int(gap * 1000), GAP_BINS - 1)] += 1
                        last = now
                    elif line.startswith(b"data: [DONE]") or line.startswith(b"data:[DONE]"):
                        rec["done"] = True
                    elif b'"error"' in line:
                        rec["error_code"] = error_code(bytes(line[5:]))
                del body[:start]
                received += len(data)
                if hangup and rec["chunks"] >= hangup_after and not rec["done"]:
                    rec["hung_up"] = True
                    return
                if rec["done"] and (decoder is None or decoder.finished):
                    return
                if decoder is not None and decoder.finished:
                    return
                if received > spec["max_bytes"]:
                    rec["failure"] = "too_many_bytes"
                    return
            if not rec["done"] and rec["error_code"] is None:
                rec["failure"] = "eof_before_done"

        await asyncio.wait_for(run(), timeout=spec["timeout_s"])
    except asyncio.TimeoutError:
        rec["failure"] = "timeout"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as exc:
        rec["failure"] = type(exc).__name__
    finally:
        if writer is not None:
            writer.close()
    rec["elapsed"] = loop.time() - t0
    return rec


async def main_async(spec: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    # The spec's start time is wall-clock (shared by every process); convert once.
    offset = loop.time() - time.time()
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
