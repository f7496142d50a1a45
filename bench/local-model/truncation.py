"""How often a stream resumed on the real model ends early: 50 cut streams.

    .venv/bin/python bench/local-model/truncation.py            # LIFELINE_BIN, else .build/debug/lifeline

Starts one gateway that runs llama.cpp's server (SmolLM2-135M-Instruct, installed by
scripts/local-model.sh) as a managed process, with the model `local-pair`: two deployments on
that one server, so a resumption can only be answered by the real model. For each of 12
prompts it streams the answer once unfailed (temperature 0; llama.cpp's prompt cache still varies it a little),
then 5 times with a drill that cuts deployment `local-a` after 10 %, 25 %, 45 %, 65 % and 85 %
of the unfailed answer's tokens; the stream resumes on `local-b`.

For each cut stream it reports:
- **ended early**: the unfailed answer ended on its own (finish_reason `stop`), the resumed one
  did not reach an end of its own: it ended on its token budget (`length`), or nothing at all
  was added after the cut; text was lost;
- **shorter**: the resumed answer has under 60 % of the unfailed answer's words (a sign of
  lost text even when it ended on `stop`);
- **repeated**: a 5-word phrase or a sentence appears twice, where the unfailed answer has it
  once (the model repeats itself now and then; that is not the splice's doing);
- **identical**: the resumed answer is the unfailed one, byte for byte;
- **lost**: any of ended early, nothing added or shorter — the streams where text was lost.

It stops at 50 cut streams (a cut past the end of an answer that came out shorter this time is
not counted). `CONTINUATION=replay` sets `continuation: replay` on `local-b`; `LABEL` names the
results file. Prints one line per stream and a summary; writes
bench/local-model/results/truncation-LABEL.json. `--summarize FILE…` prints the summaries of saved
runs again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "local_model"))
from conftest import MISSING, REQUEST_TIMEOUT_S, Gateway, free_port, gateway_config, lifeline_bin, openai_sse_content, repeated_sentences  # noqa: E402

PROMPTS = [
    "Tell me about the sun in a few sentences.",
    "Explain what a lighthouse does, in three sentences.",
    "Describe a rainy day in a small town.",
    "What are the benefits of drinking water? Answer briefly.",
    "Give three tips for learning to cook.",
    "Why do leaves change colour in autumn?",
    "Write a short note thanking a friend for a gift.",
    "Explain how a bicycle works to a child.",
    "What is the moon made of? Answer in a few sentences.",
    "Describe the ocean to someone who has never seen it.",
    "Explain why people enjoy music.",
    "Describe a walk through a forest in spring.",
]
STREAMS = 50
CUT_FRACTIONS = [0.10, 0.25, 0.45, 0.65, 0.85]
MAX_TOKENS = int(os.environ.get("MAX_TOKENS", "160"))
# How local-b is asked to go on (the deployment key `continuation`): prefill or replay.
CONTINUATION = os.environ.get("CONTINUATION", "prefill")


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def repeats(text: str, length: int = 5) -> set[tuple[str, ...]]:
    """Runs of `length` words that occur more than once in the text."""
    w = words(text)
    runs = [tuple(w[i:i + length]) for i in range(len(w) - length + 1)]
    return {run for run in runs if runs.count(run) > 1}


def classify(row: dict[str, Any]) -> dict[str, Any]:
    """The flags of one cut stream, from its texts and finish reasons."""
    text, after, unfailed = row["sent"] + row["after"], row["after"], row["unfailed"]
    nothing_added = not after.strip()
    flags = dict(
        identical=text == unfailed,
        ended_early=row["unfailed_finish"] == "stop" and (row["finish"] != "stop" or nothing_added),
        nothing_added=nothing_added,
        shorter=len(words(text)) < 0.6 * len(words(unfailed)),
        # Repeats the model makes unfailed too are its own, not the splice's.
        repeated=bool(repeats(text) - repeats(unfailed)) or bool(set(repeated_sentences(text)) - set(repeated_sentences(unfailed))),
    )
    return dict(row, **flags, lost=flags["ended_early"] or flags["nothing_added"] or flags["shorter"])


FLAGS = ("identical", "lost", "ended_early", "nothing_added", "shorter", "repeated")


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {name: sum(1 for row in rows if row[name]) for name in ("resumed", "interrupted") + FLAGS}
    summary["streams"] = len(rows)
    return summary


def stream(gateway: Gateway, prompt: str) -> dict[str, Any]:
    body = {"model": "local-pair", "stream": True, "max_tokens": MAX_TOKENS, "temperature": 0,
            "stream_options": {"include_usage": True}, "messages": [{"role": "user", "content": prompt}]}
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body, timeout=REQUEST_TIMEOUT_S) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.read()!r}")
        lines = list(r.iter_lines())
    finish = None
    tokens = 0
    for line in lines:
        if line.startswith("data:") and line.strip() != "data: [DONE]":
            chunk = json.loads(line[len("data:"):])
            for choice in chunk.get("choices", []):
                finish = choice.get("finish_reason") or finish
                if (choice.get("delta") or {}).get("content"):
                    tokens += 1
    comment = next((line for line in lines if line.startswith(": lifeline resumed")), None)
    sent_bytes = int(re.search(r"after (\d+) bytes", comment).group(1)) if comment else None
    return {"text": openai_sse_content(lines), "finish": finish, "events": tokens, "sent_bytes": sent_bytes,
            "interrupted": any('"stream_interrupted"' in line for line in lines)}


class BenchGateway(Gateway):
    """The tests' gateway, with outlier detection that never ejects `local-a`: the bench cuts it
    50 times in a row on purpose, and every cut stream must start there."""

    def start(self) -> "BenchGateway":
        config = gateway_config(self.model_port).replace(
            "routing: {backoff: {base_ms: 0, max_ms: 0}}",
            "routing: {backoff: {base_ms: 0, max_ms: 0}, outlier_detection: {consecutive_failures: 1000, "
            "failure_rate_minimum_requests: 100000}}")
        if CONTINUATION != "prefill":
            config = config.replace("{name: local-b, ", f"{{name: local-b, continuation: {CONTINUATION}, ")
            assert f"continuation: {CONTINUATION}" in config
        (self.workdir / "lifeline.yaml").write_text(config)
        super(Gateway, self).start()
        self.wait_running()
        return self


def interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    if sys.argv[1:2] == ["--summarize"]:
        # Re-reads saved runs with the current flags.
        for path in sys.argv[2:]:
            saved = json.loads(Path(path).read_text())
            print(path, json.dumps(dict(summarize([classify(row) for row in saved["rows"]]), continuation=saved["summary"].get("continuation"))))
        return 0
    # A SIGTERM stops the run like Ctrl-C, so the gateway and its model server are stopped.
    signal.signal(signal.SIGTERM, interrupt)
    if MISSING:
        print(MISSING, file=sys.stderr)
        return 2
    workdir = Path(os.environ.get("WORKDIR") or (HERE / "results" / "truncation-run"))
    workdir.mkdir(parents=True, exist_ok=True)
    gateway = BenchGateway.for_model(lifeline_bin(), workdir, free_port())
    rows: list[dict[str, Any]] = []
    started = time.time()
    try:
        gateway.start()
        for prompt in PROMPTS:
            if len(rows) == STREAMS:
                break
            unfailed = stream(gateway, prompt)
            for fraction in CUT_FRACTIONS:
                if len(rows) == STREAMS:
                    break
                after_tokens = max(2, round(unfailed["events"] * fraction))
                fault = gateway.admin("POST", "/faults", {"deployment": "local-a", "kind": "disconnect",
                                                          "after_tokens": after_tokens, "duration_s": 120})
                fault.raise_for_status()
                try:
                    cut = stream(gateway, prompt)
                finally:
                    gateway.admin("DELETE", f"/faults/{fault.json()['id']}")
                text = cut["text"]
                sent = text.encode()[: cut["sent_bytes"]].decode(errors="ignore") if cut["sent_bytes"] is not None else text
                after = text[len(sent):]
                row = classify({
                    "prompt": prompt, "cut_after_tokens": after_tokens, "unfailed_events": unfailed["events"],
                    "unfailed_finish": unfailed["finish"], "resumed": cut["sent_bytes"] is not None,
                    "interrupted": cut["interrupted"], "finish": cut["finish"], "events": cut["events"],
                    "words": len(words(text)), "unfailed_words": len(words(unfailed["text"])),
                    "sent": sent, "after": after, "unfailed": unfailed["text"],
                })
                if not row["resumed"]:
                    # The model's answer varies a little between runs, even at temperature 0 (its
                    # prompt cache changes the arithmetic): this one ended before the cut.
                    print(f"cut at {after_tokens:3d}/{unfailed['events']:3d} tokens: the answer ended first; not counted", flush=True)
                    continue
                rows.append(row)
                flags = [name for name in FLAGS + ("interrupted",) if row[name]]
                print(f"cut at {after_tokens:3d}/{unfailed['events']:3d} tokens  finish {cut['finish']!s:6}  "
                      f"words {row['words']:3d}/{row['unfailed_words']:3d}  {' '.join(flags) or 'ok'}", flush=True)
    finally:
        gateway.stop()
    summary = summarize(rows)
    summary["seconds"] = round(time.time() - started)
    summary["binary"] = str(lifeline_bin())
    summary["continuation"] = CONTINUATION
    print(json.dumps(summary))
    out = HERE / "results" / f"truncation-{os.environ.get('LABEL', CONTINUATION)}.json"
    out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print(f"details: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
