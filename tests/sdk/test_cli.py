"""The CLI a newcomer meets first, run as the built binary: `--version` (with the commit when
the build provides one), `check-config` warnings for secrets that look like unexpanded
variables, the shipped example configs (checked, and the local one served over its two
simulators), and `lifeline deployments` showing a deployment whose credentials are refused."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

from conftest import (
    OPENAI_MODEL,
    LifelineProcess,
    ProcessStartError,
    _process_env,
    anthropic_client,
    httpx,
    openai_client,
    user,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(binary: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = _process_env(**env)
    environment.pop("LIFELINE_COMMIT", None)
    environment.update(env)
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60, env=environment,
                          stdin=subprocess.DEVNULL)


def test_version_prints_the_release_and_the_commit_when_the_build_sets_it(lifeline_path: Path) -> None:
    plain = run(lifeline_path, "--version")
    assert plain.returncode == 0, plain.stderr
    assert re.fullmatch(r"\d+\.\d+\.\d+\n", plain.stdout), plain.stdout
    with_commit = run(lifeline_path, "--version", LIFELINE_COMMIT="0123456789ABCDEF0123456789abcdef01234567")
    assert with_commit.stdout == plain.stdout.strip() + " (commit 0123456789ab)\n"
    # Anything that is not a git hash is not printed.
    odd = run(lifeline_path, "--version", LIFELINE_COMMIT="$(rm -rf /)")
    assert odd.stdout == plain.stdout


def test_check_config_warns_with_the_path_of_a_secret_that_looks_unexpanded(lifeline_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text(
        "models:\n"
        "  - name: chat\n"
        "    deployments:\n"
        "      - name: openai\n"
        "        protocol: openai\n"
        "        base_url: https://api.openai.com/v1\n"
        "        api_key: $OPENAI_API_KEY\n"
        "        model: gpt-4o-mini\n"
    )
    result = run(lifeline_path, "check-config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"{config}: warning: models[0].deployments[0].api_key: looks like an unexpanded environment variable " \
           f"($OPENAI_API_KEY); only ${{OPENAI_API_KEY}} is substituted" in result.stderr, result.stderr
    assert result.stdout.strip() == f"{config}: ok (1 models, 1 deployments), 1 warning"

    config.write_text(config.read_text().replace("$OPENAI_API_KEY", "${OPENAI_API_KEY}"))
    clean = run(lifeline_path, "check-config", str(config), OPENAI_API_KEY="sk-test")
    assert clean.returncode == 0, clean.stderr
    assert "warning" not in clean.stderr
    assert clean.stdout.strip() == f"{config}: ok (1 models, 1 deployments)"


def test_the_shipped_examples_pass_check_config(lifeline_path: Path) -> None:
    for name in ("openai-anthropic.yaml", "openai-anthropic-local.yaml"):
        path = REPO_ROOT / "examples" / name
        result = run(lifeline_path, "check-config", str(path), OPENAI_API_KEY="sk-dummy", ANTHROPIC_API_KEY="sk-ant-dummy")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{path}: ok (1 models, 2 deployments)", result.stdout
        assert result.stderr == ""


def test_serve_logs_the_warning_at_start(lifeline_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(
        "models:\n"
        "  - name: chat\n"
        "    deployments:\n"
        "      - {name: sim, protocol: openai, model: lifeline-sim, simulator: {}, api_key: $SIM_KEY}\n"
    )
    p = LifelineProcess(
        name="serve-warning",
        args_for_port=lambda port: [str(lifeline_path), "serve", "--config", str(config), "--port", str(port), "--log-format", "json"],
        workdir=tmp_path,
        env=_process_env(),
    )
    p.start()
    p.stop()
    assert p.log_path is not None
    lines = [json.loads(line) for line in p.log_path.read_text().splitlines() if line.startswith("{")]
    warnings = [line for line in lines if line["message"] == "configuration warning"]
    assert [(w["level"], w["path"]) for w in warnings] == [("warning", "models[0].deployments[0].api_key")], lines
    assert "$SIM_KEY" in warnings[0]["problem"]


LEAKY_401 = "Incorrect API key provided: sk-upstream-3kQ9vT2mW8. You can find your API key in your account."


def test_deployments_lists_a_deployment_whose_credentials_are_refused(
    lifeline_path: Path, fresh_gateway: LifelineProcess, sim_a_control
) -> None:
    sim_a_control.set(error_rate=1.0, error_status=401, error_message=LEAKY_401)
    with httpx.Client(timeout=30) as client:
        for index in range(3):
            r = client.post(fresh_gateway.url + "/v1/chat/completions",
                            json={"model": OPENAI_MODEL, "max_tokens": 8, "messages": user(f"refused {index}")})
            assert r.status_code == 200, r.text
            assert r.headers.get("x-lifeline-deployment") == "oa-2"
    listing = run(lifeline_path, "deployments", "--server", fresh_gateway.url)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split()[0] == "NAME" and lines[0].rstrip().endswith("PROBLEM"), listing.stdout
    rows = {line.split()[0]: line for line in lines[1:] if line.strip()}
    assert {"oa-1", "oa-2", "an-1", "an-2"} <= set(rows), listing.stdout
    assert "rejected our credentials (HTTP 401" in rows["oa-1"], listing.stdout
    for healthy in ("oa-2", "an-1", "an-2"):
        assert "rejected" not in rows[healthy] and rows[healthy].rstrip().endswith("-"), listing.stdout
    assert "sk-upstream" not in listing.stdout + listing.stderr
    # The JSON form carries the same problem, with its kind.
    raw = run(lifeline_path, "deployments", "--server", fresh_gateway.url, "--json")
    assert raw.returncode == 0, raw.stderr
    problems = {row["name"]: row.get("problem") for row in json.loads(raw.stdout)["data"]}
    assert problems["oa-1"] is not None and problems["oa-1"]["status"] == 401, problems
    assert problems["oa-2"] is None, problems


def simulate_commands(example: str) -> list[list[str]]:
    """The `lifeline simulate ...` commands an example's comment tells the reader to start."""
    commands = []
    for line in example.splitlines():
        words = shlex.split(line.lstrip("#").strip())
        if words[:2] == ["lifeline", "simulate"]:
            commands.append(words[1:])
    return commands


def test_the_local_example_serves_both_sdks_over_its_two_simulators(lifeline_path: Path, tmp_path: Path) -> None:
    example = (REPO_ROOT / "examples" / "openai-anthropic-local.yaml").read_text()
    commands = simulate_commands(example)
    assert len(commands) == 2, f"expected two simulate commands in the example's comment, got {commands}"
    config = example
    started = []
    try:
        for index, command in enumerate(commands):
            written_port = command[command.index("--port") + 1]

            def args(port: int, command: list[str] = command) -> list[str]:
                moved = list(command)
                moved[moved.index("--port") + 1] = str(port)
                return [str(lifeline_path), *moved]

            sim = LifelineProcess(name=f"example-sim-{index}", args_for_port=args, workdir=tmp_path, env=_process_env(),
                                  fallback_ready_path="/healthz")
            try:
                sim.start()
            except ProcessStartError as exc:
                raise AssertionError(str(exc)) from exc
            started.append(sim)
            assert f"127.0.0.1:{written_port}" in config, f"the example's config does not point at port {written_port}"
            config = config.replace(f"127.0.0.1:{written_port}", f"127.0.0.1:{sim.port}")
        path = tmp_path / "openai-anthropic-local.yaml"
        path.write_text(config)
        gateway = LifelineProcess(
            name="example-gateway", workdir=tmp_path, env=_process_env(),
            args_for_port=lambda port: [str(lifeline_path), "serve", "--config", str(path), "--port", str(port)])
        try:
            gateway.start()
        except ProcessStartError as exc:
            raise AssertionError(str(exc)) from exc
        started.append(gateway)

        chat = openai_client(gateway.url).chat.completions.with_raw_response.create(
            model="chat", max_tokens=30, messages=user("Say hello from the example."))
        completion = chat.parse()
        assert completion.choices[0].message.content
        assert chat.headers.get("x-lifeline-deployment") == "openai"
        message = anthropic_client(gateway.url).messages.with_raw_response.create(
            model="chat", max_tokens=30, messages=user("Say hello from the example."))
        parsed = message.parse()
        assert "".join(block.text for block in parsed.content if block.type == "text")
        assert message.headers.get("x-lifeline-deployment") == "openai"
        # With the first simulator failing, the Anthropic one answers both APIs.
        with httpx.Client(timeout=10) as client:
            knobs = client.post(started[0].url + "/sim/control", json={"error_rate": 1.0, "error_status": 500})
            assert knobs.status_code in (200, 204), knobs.text
        fallback = openai_client(gateway.url).chat.completions.with_raw_response.create(
            model="chat", max_tokens=30, messages=user("Say hello from the example."))
        assert fallback.parse().choices[0].message.content
        assert fallback.headers.get("x-lifeline-deployment") == "anthropic"
    finally:
        for process in reversed(started):
            process.stop()
