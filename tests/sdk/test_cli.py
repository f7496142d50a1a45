"""The CLI a newcomer meets first, run as the built binary: `--version` (with the commit when
the build provides one), `check-config` warnings for secrets that look like unexpanded
variables, and the shipped example configs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import LifelineProcess, _process_env

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
