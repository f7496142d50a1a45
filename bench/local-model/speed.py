"""Speed of a chat model behind an OpenAI-compatible URL: the real local model directly, or
through Lifeline.

    .venv/bin/python bench/local-model/speed.py http://127.0.0.1:8080 chat-default

Prints the median time of five 20-token chats, the tokens per second of three 200-token
answers, and the median time to the first streamed token of five streams (temperature 0).
"""

from __future__ import annotations

import statistics
import sys
import time

import httpx


def chat(base: str, model: str, max_tokens: int, prompt: str) -> tuple[float, int]:
    started = time.perf_counter()
    r = httpx.post(base + "/v1/chat/completions", timeout=120, json={
        "model": model, "max_tokens": max_tokens, "temperature": 0, "messages": [{"role": "user", "content": prompt}]})
    r.raise_for_status()
    return time.perf_counter() - started, r.json()["usage"]["completion_tokens"]


def first_token(base: str, model: str, prompt: str) -> float:
    started = time.perf_counter()
    first = None
    with httpx.stream("POST", base + "/v1/chat/completions", timeout=120, json={
            "model": model, "max_tokens": 20, "stream": True, "messages": [{"role": "user", "content": prompt}]}) as r:
        for line in r.iter_lines():
            if first is None and '"content"' in line:
                first = time.perf_counter() - started
    assert first is not None, "no text in the stream"
    return first


def main() -> None:
    base, model = sys.argv[1], sys.argv[2]
    chat(base, model, 20, "warm up")
    short = [chat(base, model, 20, f"Say something about number {i}.") for i in range(5)]
    print(f"20-token chat: median {statistics.median(s for s, _ in short):.3f} s")
    long = [chat(base, model, 200, f"Write a long story about a lighthouse keeper number {i}.") for i in range(3)]
    print(f"200-token answers: {sum(t for _, t in long) / sum(s for s, _ in long):.0f} tokens/s "
          f"({[t for _, t in long]} tokens in {[round(s, 2) for s, _ in long]} s)")
    print(f"first streamed token: median {statistics.median(first_token(base, model, f'Hello number {i}') for i in range(5)):.3f} s")


if __name__ == "__main__":
    main()
