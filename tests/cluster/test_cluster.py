"""Three Lifeline instances on one PostgreSQL behind HAProxy, as real processes on loopback.

A key created on one instance answers on another; the leader is killed (SIGKILL) in the
middle of an incident and another instance takes over the same incident and alert, with no
second incident and no notification sent twice; PostgreSQL is stopped for 10 s under load and
serving goes on, then every usage record reaches the database. Needs haproxy and PostgreSQL's
server binaries (Debian: haproxy, postgresql); scripts/postgres.sh starts a cluster of its own
for this suite on another port, so stopping it disturbs nothing else."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from lifeline_processes import (  # noqa: E402
    LifelineProcess,
    Receiver,
    SimControl,
    Traffic,
    free_port,
    httpx,
    lifeline_bin,
    process_env,
    simulator,
    stop_all,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_PORT = "54339"
ADMIN_TOKEN = "cluster-test-admin-token"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
SIM_KEY = "cluster-sim-key"
MODEL = "chat-openai"
PAGE = f"{MODEL}:availability:burn-1h"
OUTAGE_S = 10.0


def postgres(*args: str) -> str:
    """scripts/postgres.sh for this suite's own cluster."""
    env = dict(os.environ, LIFELINE_TEST_POSTGRES_PORT=PG_PORT)
    done = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "postgres.sh"), *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"postgres.sh {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def psql(url: str, sql: str) -> str:
    done = subprocess.run(["psql", url, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def wait_until(what: str, predicate: Callable[[], Any], timeout: float, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def traffic(url: str, headers: dict[str, str] | None = None) -> Any:
    """Chat requests back to back through the balancer from a thread."""
    return Traffic(url, model=MODEL, headers=headers, prompt="cluster traffic", max_tokens=4)


def instance_config(sim_a: int, sim_b: int, receiver: str) -> str:
    def deployment(name: str, port: int, priority: int) -> str:
        return (f'      - {{name: {name}, protocol: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: "${{SIM_KEY}}", '
                f"model: sim-model, priority: {priority}}}\n")

    return (
        "server: {host: 127.0.0.1, port: 0}\n"
        'storage: {postgres: {url: "${DATABASE_URL}"}, key_refresh_s: 0.5}\n'
        "models:\n"
        f"  - name: {MODEL}\n"
        "    deployments:\n" + deployment("oa-1", sim_a, 1) + deployment("oa-2", sim_b, 2)
        + "routing: {backoff: {base_ms: 0, max_ms: 0}}\n"
        "status: {evaluation_interval_s: 0.1, window_s: 2, minimum_requests: 3, open_after_s: 1, monitor_after_s: 0.5,\n"
        "         resolve_after_s: 1.5, update_interval_s: 60}\n"
        "slos:\n"
        f"  - model: {MODEL}\n"
        "    availability: {target: 0.999, period_days: 30}\n"
        # One hour lasts 5 s.
        f"alerting: {{window_scale: {1 / 720}, evaluation_interval_s: 0.2}}\n"
        "notifications:\n"
        "  allow_private_targets: true\n"  # the receiver listens on loopback
        "  backoff: {base_ms: 10, max_ms: 100}\n"
        "  webhooks:\n"
        f'    - {{name: ops, format: json, url: "{receiver}/alerts"}}\n'
    )


def haproxy_config(port: int, instances: list[int]) -> str:
    """deploy/haproxy/haproxy.cfg's backend, on these ports."""
    shipped = (REPO_ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()
    head = shipped.split("frontend lifeline")[0].replace("    log stdout format raw local0\n", "").replace("    log global\n", "")
    servers = "".join(f"    server lifeline-{i + 1} 127.0.0.1:{p} check\n" for i, p in enumerate(instances))
    return (head + f"frontend lifeline\n    bind 127.0.0.1:{port}\n    default_backend lifeline_instances\n\n"
            "backend lifeline_instances\n    balance leastconn\n    option httpchk\n    http-check send meth GET uri /readyz\n"
            "    http-check expect status 200\n    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions\n" + servers)


@dataclass
class Cluster:
    instances: list[Any]
    balancer: str
    database_url: str
    receiver: Receiver
    sims: list[Any]

    def get(self, base: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(base + path, timeout=5, **kw)

    def leaders(self) -> list[Any]:
        found = []
        for instance in self.instances:
            try:
                if self.get(instance.url, "/readyz").json()["instance"]["leader"]:
                    found.append(instance)
            except (httpx.HTTPError, KeyError, ValueError):
                pass
        return found

    def unresolved(self, base: str | None = None) -> list[dict[str, Any]]:
        return self.get(base or self.balancer, "/api/v2/incidents/unresolved.json").json()["incidents"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    binary = lifeline_bin()
    if not binary.is_file():
        pytest.fail(f"lifeline binary not found at {binary} (set LIFELINE_BIN)")
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy not found (Debian: apt-get install haproxy)")
    admin_url = postgres()
    database = f"lifeline_cluster_{os.getpid()}"
    psql(admin_url, f"DROP DATABASE IF EXISTS {database}")
    psql(admin_url, f"CREATE DATABASE {database}")
    database_url = admin_url.rsplit("/", 1)[0] + "/" + database
    receiver = Receiver()
    balancer_proc: subprocess.Popen | None = None
    try:
        sims = [simulator(name, binary, tmp_path_factory.mktemp(name), process_env(ADMIN_TOKEN)) for name in ("cluster-simA", "cluster-simB")]
        config_text = instance_config(sims[0].port, sims[1].port, receiver.url)
        instances = []
        for index in range(3):
            workdir = tmp_path_factory.mktemp(f"instance{index + 1}")
            config = workdir / "lifeline.yaml"
            config.write_text(config_text)
            process = LifelineProcess(
                name=f"instance{index + 1}",
                args_for_port=lambda port, config=config: [str(binary), "serve", "--config", str(config), "--port", str(port)],
                workdir=workdir,
                env=process_env(ADMIN_TOKEN, SIM_KEY=SIM_KEY, DATABASE_URL=database_url),
            )
            instances.append(process.start())
        port = free_port()
        haproxy_cfg = tmp_path_factory.mktemp("haproxy") / "haproxy.cfg"
        haproxy_cfg.write_text(haproxy_config(port, [p.port for p in instances]))
        check = subprocess.run(["haproxy", "-c", "-f", str(haproxy_cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        balancer_proc = subprocess.Popen(["haproxy", "-db", "-f", str(haproxy_cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        balancer = f"http://127.0.0.1:{port}"

        def every_server_up() -> bool:
            try:
                return all(httpx.get(balancer + "/readyz", timeout=2).status_code == 200 for _ in range(6))
            except httpx.HTTPError:
                return False

        wait_until("the balancer to pass requests", every_server_up, 15)
        yield Cluster(instances=instances, balancer=balancer, database_url=database_url, receiver=receiver, sims=sims)
    finally:
        if balancer_proc is not None:
            balancer_proc.terminate()
            balancer_proc.wait(timeout=10)
        stop_all()
        receiver.close()
        postgres()  # a test may have left it stopped
        psql(admin_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        postgres("stop")


def test_a_key_created_on_one_instance_answers_on_another_and_through_the_balancer(cluster: Cluster) -> None:
    first, others = cluster.instances[0], cluster.instances[1:]
    created = httpx.post(first.url + "/admin/v1/keys", json={"name": "cluster"}, headers=ADMIN, timeout=5)
    assert created.status_code == 201, created.text
    auth = {"authorization": f"Bearer {created.json()['secret']}"}
    body = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "shared key"}]}
    began = time.monotonic()
    for other in others:
        wait_until(f"the key on {other.name}", lambda: httpx.post(other.url + "/v1/chat/completions", json=body, headers=auth,
                                                                  timeout=10).status_code == 200, 2.5, step=0.05)
    print(f"key created on instance 1 answered on the other two after {time.monotonic() - began:.2f} s")
    for _ in range(6):
        assert httpx.post(cluster.balancer + "/v1/chat/completions", json=body, headers=auth, timeout=10).status_code == 200
    assert len(wait_until("exactly one leader", lambda: len(cluster.leaders()) == 1 and cluster.leaders(), 10)) == 1


def test_killing_the_leader_mid_incident_hands_over_the_same_incident_and_alert_without_repeats(cluster: Cluster) -> None:
    receiver = cluster.receiver
    subscribed = httpx.post(cluster.balancer + "/api/v2/subscribers", json={"subscriber": {"endpoint": receiver.url + "/updates"}},
                            headers=ADMIN, timeout=5)
    assert subscribed.status_code == 201, subscribed.text
    leader = wait_until("a leader", lambda: cluster.leaders(), 10)[0]
    load = traffic(cluster.balancer)
    try:
        for sim in cluster.sims:
            SimControl(sim).set(error_rate=1.0, error_status=500)
        incident = wait_until("an incident", lambda: cluster.unresolved(), 20)[0]
        wait_until("the page to fire", lambda: [b for b in receiver.on("/alerts") if b["alert"] == PAGE and b["state"] == "firing"], 20)
        wait_until("the subscriber to hear of the incident", lambda: [b for b in receiver.on("/updates")
                                                                     if b["incident"]["id"] == incident["id"]], 10)

        assert leader.proc is not None
        os.killpg(leader.proc.pid, signal.SIGKILL)
        leader.proc.wait(timeout=10)
        killed_at = time.monotonic()
        cluster.instances.remove(leader)
        successor = wait_until("another instance to lead", lambda: cluster.leaders(), 10, step=0.05)
        print(f"leader killed mid-incident; instance {successor[0].name} led after {time.monotonic() - killed_at:.2f} s")
        assert len(successor) == 1
        time.sleep(2)  # the new leader goes on judging the outage
        still = cluster.unresolved(successor[0].url)
        assert [i["id"] for i in still] == [incident["id"]], "the same incident goes on; none opens beside it"

        for sim in cluster.sims:
            SimControl(sim).reset()
        wait_until("the incident to resolve", lambda: not cluster.unresolved(), 30)
        wait_until("the page to resolve", lambda: [b for b in receiver.on("/alerts") if b["alert"] == PAGE and b["state"] == "resolved"], 30)
    finally:
        load.stop()
        for sim in cluster.sims:
            SimControl(sim).reset()
    incidents = cluster.get(cluster.balancer, "/api/v2/incidents.json").json()["incidents"]
    assert [i["id"] for i in incidents] == [incident["id"]], "one outage, one incident, across the leader change"
    time.sleep(1)  # anything sent twice would arrive now
    alerts = receiver.on("/alerts")
    firing = Counter(b["alert"] for b in alerts if b["state"] == "firing")
    assert firing and max(firing.values()) == 1, f"an alert fired twice: {firing}"
    page = [b for b in alerts if b["alert"] == PAGE]
    assert [b["state"] for b in page] == ["firing", "resolved"], page
    assert page[0]["id"] == page[1]["id"], "the new leader resolved the episode the old one announced"
    updates = [b["incident"]["incident_updates"][0]["id"] for b in receiver.on("/updates")]
    assert updates and len(updates) == len(set(updates)), f"a subscriber update was sent twice: {updates}"
    statuses = [b["incident"]["status"] for b in receiver.on("/updates")]
    assert statuses[-1] == "resolved", statuses


def test_stopping_postgresql_under_load_keeps_serving_and_usage_catches_up(cluster: Cluster) -> None:
    created = httpx.post(cluster.balancer + "/admin/v1/keys", json={"name": "through the outage"}, headers=ADMIN, timeout=5)
    assert created.status_code == 201, created.text
    key_id, auth = created.json()["id"], {"authorization": f"Bearer {created.json()['secret']}"}
    warmup: list[int] = []

    def known_everywhere() -> bool:
        body = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "known?"}]}
        answers = [httpx.post(i.url + "/v1/chat/completions", headers=auth, json=body, timeout=10).status_code for i in cluster.instances]
        warmup.extend(answers)
        return set(answers) == {200}

    wait_until("the key everywhere", known_everywhere, 5)
    load = traffic(cluster.balancer, headers=auth)
    try:
        time.sleep(1)
        postgres("stop")
        stopped_at = time.monotonic()
        wait_until("every instance to report the store", lambda: all(
            cluster.get(i.url, "/readyz").json()["store"]["status"] == "unreachable" for i in cluster.instances), 8)
        for instance in cluster.instances:
            ready = cluster.get(instance.url, "/readyz")
            assert ready.status_code == 200, "an instance that can serve stays in the balancer"
            assert ready.json()["instance"]["leader"] is False, "nobody leads without the store"
        during_start = len(load.statuses)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
        during = load.statuses[during_start:]
        postgres()
        wait_until("the store to answer again everywhere", lambda: all(
            cluster.get(i.url, "/readyz").json()["store"]["status"] == "ok" for i in cluster.instances), 15)
        time.sleep(1)
    finally:
        statuses = load.stop()
    print(f"PostgreSQL stopped for {OUTAGE_S:.0f} s: {len(during)} requests during the outage, statuses {sorted(Counter(during).items())}")
    assert during and set(during) == {200}, "serving went on from cached keys"
    served = statuses.count(200)

    def recorded() -> bool:
        return int(psql(cluster.database_url, f"SELECT COALESCE(sum(requests), 0) FROM usage_minutes WHERE key_id = '{key_id}'")) \
            == served + warmup.count(200)

    wait_until("every usage record in the database", recorded, 20, step=0.25)
    assert len(wait_until("one leader again", lambda: len(cluster.leaders()) == 1 and cluster.leaders(), 10)) == 1
