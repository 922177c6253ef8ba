"""deploy/ holds together: docker-compose.yml, the Kubernetes manifests, the Dockerfile and the nginx
configuration agree on ports, paths, sizes, probes and commands, and every `mltrail` command line in them
is one our CLI accepts. Without a docker daemon or a cluster here, these checks read the files with
PyYAML; `nginx -t` checks the nginx configuration itself when nginx is installed."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from stack import NGINX_CONF, UPSTREAMS_FILE, Nginx, find_nginx

from mltrail.cli import main as mltrail_cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _bytes(size: str) -> int:
    """nginx's `1g` and mltrail's `1GiB` as a number of bytes."""
    m = re.fullmatch(r"(\d+)\s*([kmg]?)(?:i?b)?", size.strip().lower())
    assert m, f"not a size: {size!r}"
    return int(m.group(1)) * _UNITS[m.group(2)]


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _nginx_directive(name: str) -> str:
    found = re.findall(rf"^\s*{name}\s+([^;]+);", NGINX_CONF.read_text(), re.MULTILINE)
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def _parse_mltrail(args: list[str]) -> dict:
    """Parse a `mltrail ...` command line with our real click commands (types and callbacks run, nothing else)."""
    assert args[0] == "mltrail", args
    ctx = mltrail_cli.make_context("mltrail", list(args[1:2]))
    cmd = mltrail_cli.get_command(ctx, args[1])
    rest = args[2:]
    if args[1] == "db":
        sub_ctx = cmd.make_context("db", list(rest[:1]), parent=ctx)
        cmd, ctx, rest = cmd.get_command(sub_ctx, rest[0]), sub_ctx, rest[1:]
    return cmd.make_context(args[1], list(rest), parent=ctx).params


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict]:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = {**doc, "_file": path.name}
    return docs


# -- nginx ----------------------------------------------------------------------------------
def test_nginx_streams_bodies_and_forwards_the_client():
    text = NGINX_CONF.read_text()
    for line in ("proxy_request_buffering off;", "proxy_buffering off;", "proxy_http_version 1.1;",
                 'proxy_set_header Connection "";', "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                 "proxy_set_header X-Forwarded-Proto $scheme;", "proxy_set_header X-Forwarded-Host $host;",
                 "least_conn;", f"include {UPSTREAMS_FILE};", "location = /health {"):
        assert line in text, line
    assert re.search(r"^\s*keepalive \d+;", text, re.MULTILINE)
    assert "upstream=$upstream_addr" in text  # the tests read which replica answered from the access log


def test_nginx_accepts_the_shipped_configuration(tmp_path):
    binary = find_nginx()
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    server = Nginx(tmp_path, ["127.0.0.1:5001", "127.0.0.1:5002"], binary)
    main = server.write_config()
    # the tests change the listen line, nothing else
    shipped, used = NGINX_CONF.read_text().splitlines(), (tmp_path / "mltrail.conf").read_text().splitlines()
    assert [(a, b) for a, b in zip(shipped, used, strict=True) if a != b] == [
        ("    listen 8080;", f"    listen 127.0.0.1:{server.port};")]
    proc = subprocess.run([binary, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(main)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr


# -- docker compose -------------------------------------------------------------------------
def test_compose_replicas_match_the_nginx_upstreams_and_limits(compose):
    services = compose["services"]
    replica = services["replica"]["command"]
    port = _option(replica, "--port")
    upstreams = re.findall(r"^server\s+(\S+)", (DEPLOY / "nginx" / UPSTREAMS_FILE).read_text(), re.MULTILINE)
    assert upstreams == [f"replica:{port}"]
    assert services["replica"]["expose"] == [port]
    assert _bytes(_option(replica, "--max-artifact-size")) == _bytes(_nginx_directive("client_max_body_size"))
    # X-Forwarded-* believed from the private networks only (never uvicorn's --forwarded-allow-ips *)
    assert _option(replica, "--trusted-proxies").split(",") == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    assert "--uvicorn-opts" not in replica
    # --auth is switched by MLTRAIL_AUTH_FLAG; both values parse, and the default is off
    assert replica[-1] == "${MLTRAIL_AUTH_FLAG:---no-auth}"
    for flag, auth in (("--no-auth", False), ("--auth", True)):
        params = _parse_mltrail([*replica[:-1], flag])
        assert params["auth"] is auth and params["port"] == int(port) and params["max_artifact_size"] == 1024**3
    assert "replicas" in services["replica"]["deploy"]


def test_compose_nginx_mounts_what_its_config_includes(compose):
    nginx = compose["services"]["nginx"]
    listen = _nginx_directive("listen")
    assert nginx["ports"] == ["${MLTRAIL_PORT:-8080}:" + listen]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in nginx["volumes"]}
    main = (DEPLOY / "nginx" / "nginx.conf").read_text()
    assert "include mltrail.conf;" in main and "mltrail_upstream;" in main
    assert mounts == {"/etc/nginx/nginx.conf": "./nginx/nginx.conf", "/etc/nginx/mltrail.conf": "./nginx/mltrail.conf",
                      f"/etc/nginx/{UPSTREAMS_FILE}": f"./nginx/{UPSTREAMS_FILE}"}
    for source in mounts.values():
        assert (DEPLOY / source).is_file(), source
    assert nginx["depends_on"]["replica"]["condition"] == "service_healthy"


def test_compose_migrates_once_before_the_replicas(compose):
    services = compose["services"]
    migrate = services["migrate"]["command"]
    assert migrate[:2] == ["sh", "-c"] and migrate[2] == 'exec mltrail db upgrade "$$MLFLOW_BACKEND_STORE_URI"'
    assert _parse_mltrail(["mltrail", "db", "upgrade", "postgresql://u@h/db"]) == {"url": "postgresql://u@h/db"}
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    after = services["replica"]["depends_on"]
    assert after["migrate"]["condition"] == after["bucket"]["condition"] == "service_completed_successfully"
    compile(services["bucket"]["command"][2], "bucket", "exec")  # the inline script is valid Python


def test_compose_environment_points_at_its_own_services(compose):
    services = compose["services"]
    env = services["replica"]["environment"]
    assert env is services["migrate"]["environment"] is services["bucket"]["environment"]  # one anchor
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://mltrail:")
    assert env["MLFLOW_BACKEND_STORE_URI"].endswith("@postgres:5432/" + services["postgres"]["environment"]["POSTGRES_DB"])
    assert env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://mltrail/")  # the bucket the one-off creates
    assert '"mltrail"' in services["bucket"]["command"][2]
    s3_port = next(a.split("=")[1] for a in services["s3"]["command"] if a.startswith("-s3.port="))
    assert env["MLFLOW_S3_ENDPOINT_URL"] == f"http://s3:{s3_port}"
    creds = json.loads((DEPLOY / "seaweedfs" / "s3.json").read_text())["identities"][0]["credentials"][0]
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (creds["accessKey"], creds["secretKey"])
    assert "./seaweedfs/s3.json:/etc/seaweedfs/s3.json:ro" in services["s3"]["volumes"]
    for name in ("bucket", "migrate", "replica"):
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}


def test_dockerfile_installs_the_package_and_checks_health(compose):
    text = (DEPLOY / "Dockerfile").read_text()
    assert "RUN pip install ." in text and "COPY src ./src" in text and "COPY pyproject.toml README.md ./" in text
    port = _option(compose["services"]["replica"]["command"], "--port")
    assert f"EXPOSE {port}" in text and f"http://127.0.0.1:{port}/health" in text
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1))
    assert _parse_mltrail(cmd)["port"] == int(port)


# -- Kubernetes -----------------------------------------------------------------------------
def test_kustomization_lists_every_manifest(k8s):
    listed = k8s["Kustomization"]["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert set(k8s) == {"Kustomization", "ConfigMap", "Secret", "Job", "Deployment", "Service", "Ingress"}


def test_deployment_probes_ports_and_command(k8s):
    dep = k8s["Deployment"]["spec"]
    assert dep["replicas"] >= 2
    assert dep["selector"]["matchLabels"].items() <= dep["template"]["metadata"]["labels"].items()
    (container,) = dep["template"]["spec"]["containers"]
    params = _parse_mltrail(container["command"])
    assert container["ports"] == [{"name": "http", "containerPort": params["port"]}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    assert params["host"] == "0.0.0.0"
    assert params["trusted_proxies"] and not params["uvicorn_opts"]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
    assert refs == {k8s["ConfigMap"]["metadata"]["name"], k8s["Secret"]["metadata"]["name"]}


def test_service_and_ingress_reach_the_pods_with_the_server_limits(k8s):
    pod_labels = k8s["Deployment"]["spec"]["template"]["metadata"]["labels"]
    svc = k8s["Service"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    ing = k8s["Ingress"]
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": svc["metadata"]["name"], "port": {"name": svc["spec"]["ports"][0]["name"]}}
    notes = ing["metadata"]["annotations"]
    (container,) = k8s["Deployment"]["spec"]["template"]["spec"]["containers"]
    limit = _parse_mltrail(container["command"])["max_artifact_size"]
    assert _bytes(notes["nginx.ingress.kubernetes.io/proxy-body-size"]) == limit
    assert notes["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 300


def test_job_upgrades_the_database_named_by_the_secret(k8s):
    job = k8s["Job"]["spec"]["template"]["spec"]
    (container,) = job["containers"]
    assert container["command"] == ["mltrail", "db", "upgrade", "$(MLFLOW_BACKEND_STORE_URI)"]
    assert _parse_mltrail(container["command"])["url"] == "$(MLFLOW_BACKEND_STORE_URI)"
    assert job["restartPolicy"] in {"OnFailure", "Never"}
    secret = k8s["Secret"]
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    assert secret["stringData"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= secret["stringData"].keys()
    assert k8s["ConfigMap"]["data"]["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    images = {container["image"], k8s["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]}
    assert len(images) == 1  # migrate with the image the replicas run
