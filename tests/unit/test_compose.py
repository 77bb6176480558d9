"""docker-compose.yml and the Dockerfile, checked by construction (no Docker engine needed).

Every rule is a checker that returns a list of problems. The real files must produce none, and
each checker is also run against a deliberately broken copy to show that it can fail.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services.config import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
CONFIG_SOURCE = ROOT / "services" / "config.py"

INFRA = ("kafka", "postgres")
GAMIFY_SERVICES = {
    "api": "api",
    "projector": "project",
    "inbound": "inbound",
    "scheduler": "scheduler",
}
HEALTH_PATHS = {
    "api": "/readyz",
    "projector": "/healthz",
    "inbound": "/healthz",
    "scheduler": "/healthz",
}
KAFKA_SCRIPTS = "/opt/kafka/bin/"
PUBLISHING = {"api"}

Compose = dict[str, Any]
Checker = Callable[[Compose], list[str]]


# --- helpers -------------------------------------------------------------------------------------


def load_compose() -> Compose:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def documented_variables() -> set[str]:
    return set(re.findall(r"GAMIFY_[A-Z_]+", CONFIG_SOURCE.read_text()))


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$\$")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Expand compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}`` like an empty shell."""
    env = env or {}

    def expand(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1)) or (match.group(2) or "")

    return _INTERPOLATION.sub(expand, value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whether written as a mapping or a ``KEY=VALUE`` list."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {k: "" if v is None else str(v) for k, v in raw.items()}


def command_words(value: Any) -> list[str]:
    return value.split() if isinstance(value, str) else list(value or [])


def healthcheck_argv(service: dict[str, Any]) -> list[str]:
    """The healthcheck's command as argv (``CMD`` form) or shell words (``CMD-SHELL`` form)."""
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, str):
        return test.split()
    if not test or test[0] == "NONE":
        return []
    if test[0] == "CMD-SHELL":
        return " ".join(test[1:]).split()
    if test[0] == "CMD":
        return list(test[1:])
    return []


def build_context(service: dict[str, Any]) -> str | None:
    build = service.get("build")
    if isinstance(build, dict):
        return build.get("context", ".")
    return build


def named_volume(spec: Any) -> str | None:
    """The named volume a service mount refers to, or None for bind mounts and tmpfs."""
    if isinstance(spec, dict):
        return spec.get("source") if spec.get("type", "volume") == "volume" else None
    source = str(spec).split(":", 1)[0]
    if ":" not in str(spec) or source.startswith(("/", ".", "~", "$")):
        return None
    return source


def kafka_advertised_address(compose: Compose) -> str | None:
    advertised = environment(compose["services"].get("kafka", {})).get(
        "KAFKA_ADVERTISED_LISTENERS", ""
    )
    for listener in advertised.split(","):
        if listener.startswith("PLAINTEXT://"):
            return listener.removeprefix("PLAINTEXT://")
    return None


# --- checkers ------------------------------------------------------------------------------------


def check_services_exist(compose: Compose) -> list[str]:
    services = compose.get("services") or {}
    return [
        f"service {name!r} is missing"
        for name in (*INFRA, *GAMIFY_SERVICES)
        if name not in services
    ]


def check_kafka_is_kraft(compose: Compose) -> list[str]:
    problems = []
    kafka = compose["services"]["kafka"]
    image = kafka.get("image", "")
    if not re.fullmatch(r"(docker\.io/)?apache/kafka:[34]\.\d+\.\d+", image):
        problems.append(f"kafka image {image!r} is not a pinned 3.x/4.x apache/kafka tag")
    env = environment(kafka)
    roles = {r.strip() for r in env.get("KAFKA_PROCESS_ROLES", "").split(",")}
    if not {"broker", "controller"} <= roles:
        problems.append(f"KAFKA_PROCESS_ROLES {sorted(roles)} must include broker and controller")
    node_id = env.get("KAFKA_NODE_ID")
    voters = [
        v.strip() for v in env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "").split(",") if v.strip()
    ]
    if not node_id or not any(v.startswith(f"{node_id}@") and v.endswith(":9093") for v in voters):
        problems.append(f"no controller quorum voter {node_id}@...:9093 in {voters}")
    listeners = env.get("KAFKA_LISTENERS", "")
    for listener in ("PLAINTEXT://:9092", "CONTROLLER://:9093"):
        if listener not in listeners.split(","):
            problems.append(f"KAFKA_LISTENERS lacks {listener}")
    if env.get("KAFKA_CONTROLLER_LISTENER_NAMES") != "CONTROLLER":
        problems.append("KAFKA_CONTROLLER_LISTENER_NAMES must be CONTROLLER")
    if env.get("KAFKA_INTER_BROKER_LISTENER_NAME") != "PLAINTEXT":
        problems.append("KAFKA_INTER_BROKER_LISTENER_NAME must be PLAINTEXT")
    if kafka_advertised_address(compose) != "kafka:9092":
        problems.append("KAFKA_ADVERTISED_LISTENERS must advertise PLAINTEXT://kafka:9092")
    for name in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    ):
        if env.get(name) != "1":
            problems.append(f"{name} must be 1 on a single node")
    if env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "").lower() != "false":
        problems.append("KAFKA_AUTO_CREATE_TOPICS_ENABLE must be false")
    if "zookeeper" in json.dumps(compose).lower():
        problems.append("ZooKeeper is mentioned; the broker must run in KRaft mode")
    return problems


def check_postgres_is_official(compose: Compose) -> list[str]:
    postgres = compose["services"]["postgres"]
    image = postgres.get("image", "")
    problems = []
    if not re.fullmatch(r"((docker\.io/)?library/)?postgres:\d+[\w.-]*", image):
        problems.append(f"postgres image {image!r} is not a pinned official postgres image")
    env = environment(postgres)
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        if not env.get(name):
            problems.append(f"postgres lacks {name}")
    return problems


def check_gamify_services(compose: Compose) -> list[str]:
    problems = []
    services = compose["services"]
    kafka_address = kafka_advertised_address(compose)
    pg = environment(services["postgres"])
    for name, subcommand in GAMIFY_SERVICES.items():
        service = services[name]
        env = environment(service)
        if build_context(service) not in (".", "./"):
            problems.append(f"{name} does not build from .")
        if command_words(service.get("command")) != [subcommand]:
            problems.append(f"{name} runs {service.get('command')!r}, not {subcommand!r}")
        if not kafka_address or env.get("GAMIFY_KAFKA_BOOTSTRAP_SERVERS") != kafka_address:
            problems.append(f"{name} GAMIFY_KAFKA_BOOTSTRAP_SERVERS is not {kafka_address!r}")
        url = urlsplit(env.get("GAMIFY_DATABASE_URL", ""))
        expected = (
            "postgresql",
            "postgres",
            5432,
            pg.get("POSTGRES_USER"),
            pg.get("POSTGRES_PASSWORD"),
            "/" + pg.get("POSTGRES_DB", ""),
        )
        actual = (url.scheme, url.hostname, url.port, url.username, url.password, url.path)
        if actual != expected:
            problems.append(
                f"{name} GAMIFY_DATABASE_URL {actual} does not match postgres {expected}"
            )
        depends = service.get("depends_on") or {}
        for dependency in INFRA:
            condition = (
                depends.get(dependency, {}).get("condition") if isinstance(depends, dict) else None
            )
            if condition != "service_healthy":
                problems.append(f"{name} does not wait for {dependency} to be healthy")
        if not healthcheck_argv(service):
            problems.append(f"{name} has no healthcheck")
        if service.get("restart") != "unless-stopped":
            problems.append(f"{name} restart policy is not unless-stopped")
        try:
            Settings.from_env({k: interpolate(v) for k, v in env.items()})
        except ConfigError as exc:
            problems.append(f"{name} environment is rejected by Settings: {exc}")
        if interpolate(env.get("GAMIFY_HTTP_HOST", "0.0.0.0")) != "0.0.0.0":
            problems.append(f"{name} does not listen on all interfaces")
    return problems


def check_healthcheck_commands(compose: Compose) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        if "healthcheck" not in service:
            continue
        argv = healthcheck_argv(service)
        program = argv[0] if argv else ""
        if name in GAMIFY_SERVICES:
            if argv[:2] != ["python", "-c"] or len(argv) != 3:
                problems.append(f"{name} healthcheck must be python -c (no curl in the slim image)")
                continue
            try:
                compile(argv[2], f"<{name} healthcheck>", "exec")
            except SyntaxError as exc:
                problems.append(f"{name} healthcheck is not valid Python: {exc}")
            port = environment(service).get("GAMIFY_HTTP_PORT", "8080")
            url = f"http://127.0.0.1:{port}{HEALTH_PATHS[name]}"
            if f"'{url}'" not in argv[2] and f'"{url}"' not in argv[2]:
                problems.append(f"{name} healthcheck does not request {url}")
        elif name == "postgres":
            if program != "pg_isready":
                problems.append(f"postgres healthcheck runs {program!r}, not pg_isready")
        elif name == "kafka":
            if not (program.startswith(KAFKA_SCRIPTS) and program.endswith(".sh")):
                problems.append(
                    f"kafka healthcheck runs {program!r}, not a script in {KAFKA_SCRIPTS}"
                )
            if "--bootstrap-server" not in argv:
                problems.append("kafka healthcheck does not contact the broker")
        else:
            problems.append(f"{name} has a healthcheck this test does not know how to verify")
    return problems


def check_ports(compose: Compose) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        if service.get("ports") and name not in PUBLISHING:
            problems.append(f"{name} publishes ports {service['ports']}")
    api = compose["services"].get("api", {})
    port = environment(api).get("GAMIFY_HTTP_PORT", "8080")
    if [str(p) for p in api.get("ports") or []] != [f"8080:{port}"]:
        problems.append(f"api must publish host 8080 to container {port}, has {api.get('ports')}")
    return problems


def check_volumes(compose: Compose) -> list[str]:
    declared = set(compose.get("volumes") or {})
    problems = []
    used = set()
    for name, service in compose["services"].items():
        for spec in service.get("volumes") or []:
            volume = named_volume(spec)
            if volume is None:
                continue
            used.add(volume)
            if volume not in declared:
                problems.append(f"{name} mounts undeclared volume {volume!r}")
    mounts = {
        "kafka": environment(compose["services"]["kafka"]).get("KAFKA_LOG_DIRS"),
        "postgres": "/var/lib/postgresql/data",
    }
    for name, path in mounts.items():
        targets = [
            str(spec).split(":")[1]
            for spec in compose["services"][name].get("volumes") or []
            if named_volume(spec)
        ]
        if not path or path not in targets:
            problems.append(f"{name} keeps its data ({path}) outside a named volume")
    problems += [f"volume {v!r} is declared but unused" for v in sorted(declared - used)]
    return problems


def check_gamify_variables(compose: Compose) -> list[str]:
    documented = documented_variables()
    used = set(re.findall(r"GAMIFY_[A-Z_]+", json.dumps(compose)))
    return [f"{v} is not read by services/config.py" for v in sorted(used - documented)]


def check_api_key_default(compose: Compose) -> list[str]:
    raw = environment(compose["services"]["api"]).get("GAMIFY_API_KEYS", "")
    if not re.fullmatch(r"\$\{GAMIFY_API_KEYS:-[^}]+\}", raw):
        return [f"GAMIFY_API_KEYS {raw!r} must be overridable: ${{GAMIFY_API_KEYS:-...}}"]
    if "change-me" not in raw:
        return ["the example API key must be clearly marked (change-me)"]
    return []


COMPOSE_CHECKERS: list[Checker] = [
    check_services_exist,
    check_kafka_is_kraft,
    check_postgres_is_official,
    check_gamify_services,
    check_healthcheck_commands,
    check_ports,
    check_volumes,
    check_gamify_variables,
    check_api_key_default,
]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def check_dockerfile(text: str) -> list[str]:
    problems = []
    instructions = dockerfile_instructions(text)

    def values(keyword: str) -> list[str]:
        return [rest for kw, rest in instructions if kw == keyword]

    if not values("FROM") or not values("FROM")[-1].startswith("python:3.11-slim"):
        problems.append("the image is not based on python:3.11-slim")
    entrypoints = values("ENTRYPOINT")
    if not entrypoints or json.loads(entrypoints[-1]) != ["gamify"]:
        problems.append(f'ENTRYPOINT must be ["gamify"], is {entrypoints}')
    cmds = values("CMD")
    if not cmds or json.loads(cmds[-1]) != ["serve"]:
        problems.append(f'CMD must be ["serve"], is {cmds}')
    if not any(
        re.search(r"\bpip install\b.*--no-cache-dir.*\s\.(\s|$)", run) for run in values("RUN")
    ):
        problems.append("the project is not installed with pip install --no-cache-dir .")
    users = values("USER")
    if not users or users[-1] in ("root", "0"):
        problems.append("the image runs as root")
    if "8080" not in " ".join(values("EXPOSE")).split():
        problems.append("port 8080 is not exposed")
    env = " ".join(values("ENV"))
    for setting in ("GAMIFY_HTTP_HOST=0.0.0.0", "GAMIFY_DATA_DIR=/data"):
        if setting not in env.split():
            problems.append(f"ENV lacks {setting}")
    if not any("/data" in v for v in values("VOLUME")):
        problems.append("/data is not a VOLUME")
    return problems


# --- the real files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


@pytest.mark.parametrize("checker", COMPOSE_CHECKERS, ids=lambda c: c.__name__)
def test_compose_file(compose: Compose, checker: Checker) -> None:
    assert checker(compose) == []


def test_compose_raw_text_uses_only_documented_variables() -> None:
    # The raw text too, so variables inside comments or unused anchors cannot drift either.
    used = set(re.findall(r"GAMIFY_[A-Z_]+", COMPOSE_FILE.read_text()))
    assert used, "no GAMIFY_ variables found at all"
    assert used <= documented_variables()


def test_documented_variables_are_parsed_from_config() -> None:
    documented = documented_variables()
    assert {
        "GAMIFY_KAFKA_BOOTSTRAP_SERVERS",
        "GAMIFY_DATABASE_URL",
        "GAMIFY_API_KEYS",
    } <= documented


def test_dockerfile() -> None:
    assert check_dockerfile(DOCKERFILE.read_text()) == []


def test_gamify_console_script_exists() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.get("gamify") == "services.cli:main"


def test_dockerignore_keeps_build_context_small() -> None:
    ignored = {
        line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
    }
    assert {".venv", "data", ".git", "bench/results"} <= ignored
    assert not {"services", "projections", "schemas", "pyproject.toml", "README.md"} & ignored


def test_interpolate_behaves_like_compose() -> None:
    assert interpolate("${GAMIFY_API_KEYS:-default:change-me:admin}") == "default:change-me:admin"
    assert interpolate("${X:-d}", {"X": "set"}) == "set"
    assert interpolate("${X-d}") == "d"
    assert interpolate("$${X}") == "${X}"


# --- each checker can fail -----------------------------------------------------------------------


def _drop(path: str) -> Callable[[Compose], None]:
    *parents, leaf = path.split(".")

    def mutate(c: Compose) -> None:
        node = c
        for key in parents:
            node = node[key]
        del node[leaf]

    return mutate


def _set(path: str, value: Any) -> Callable[[Compose], None]:
    *parents, leaf = path.split(".")

    def mutate(c: Compose) -> None:
        node = c
        for key in parents:
            node = node[key]
        node[leaf] = value

    return mutate


def _rename_env(service: str, old: str, new: str) -> Callable[[Compose], None]:
    def mutate(c: Compose) -> None:
        env = c["services"][service]["environment"]
        env[new] = env.pop(old)

    return mutate


def _add_zookeeper(c: Compose) -> None:
    c["services"]["zookeeper"] = {"image": "zookeeper:3.9"}


BROKEN: list[tuple[str, Callable[[Compose], None], Checker, str]] = [
    ("no inbound", _drop("services.inbound"), check_services_exist, "'inbound' is missing"),
    (
        "bitnami kafka",
        _set("services.kafka.image", "bitnami/kafka:3.9"),
        check_kafka_is_kraft,
        "apache/kafka",
    ),
    (
        "unpinned kafka",
        _set("services.kafka.image", "apache/kafka:latest"),
        check_kafka_is_kraft,
        "pinned",
    ),
    (
        "broker only",
        _set("services.kafka.environment.KAFKA_PROCESS_ROLES", "broker"),
        check_kafka_is_kraft,
        "controller",
    ),
    (
        "no voters",
        _drop("services.kafka.environment.KAFKA_CONTROLLER_QUORUM_VOTERS"),
        check_kafka_is_kraft,
        "quorum voter",
    ),
    ("zookeeper", _add_zookeeper, check_kafka_is_kraft, "ZooKeeper"),
    (
        "auto create",
        _set("services.kafka.environment.KAFKA_AUTO_CREATE_TOPICS_ENABLE", "true"),
        check_kafka_is_kraft,
        "AUTO_CREATE",
    ),
    (
        "rf 3",
        _set("services.kafka.environment.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
        check_kafka_is_kraft,
        "OFFSETS",
    ),
    (
        "bitnami pg",
        _set("services.postgres.image", "bitnami/postgresql:16"),
        check_postgres_is_official,
        "official",
    ),
    (
        "image not built",
        _drop("services.projector.build"),
        check_gamify_services,
        "projector does not build",
    ),
    (
        "wrong subcommand",
        _set("services.projector.command", ["serve"]),
        check_gamify_services,
        "not 'project'",
    ),
    (
        "wrong broker",
        _set("services.inbound.environment.GAMIFY_KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
        check_gamify_services,
        "BOOTSTRAP",
    ),
    (
        "advertised moved",
        _set("services.kafka.environment.KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://broker:9092"),
        check_gamify_services,
        "BOOTSTRAP",
    ),
    (
        "wrong db password",
        _set("services.postgres.environment.POSTGRES_PASSWORD", "secret"),
        check_gamify_services,
        "DATABASE_URL",
    ),
    (
        "wrong db host",
        _set(
            "services.api.environment.GAMIFY_DATABASE_URL",
            "postgresql://gamify:gamify@localhost:5432/gamify",
        ),
        check_gamify_services,
        "DATABASE_URL",
    ),
    (
        "started not healthy",
        _set("services.api.depends_on.kafka.condition", "service_started"),
        check_gamify_services,
        "kafka to be healthy",
    ),
    (
        "no postgres dep",
        _set("services.inbound.depends_on", {"kafka": {"condition": "service_healthy"}}),
        check_gamify_services,
        "postgres to be healthy",
    ),
    (
        "no healthcheck",
        _drop("services.projector.healthcheck"),
        check_gamify_services,
        "projector has no healthcheck",
    ),
    (
        "bad partitions",
        _set("services.api.environment.GAMIFY_KAFKA_PARTITIONS", "many"),
        check_gamify_services,
        "rejected by Settings",
    ),
    (
        "loopback",
        _set("services.api.environment.GAMIFY_HTTP_HOST", "127.0.0.1"),
        check_gamify_services,
        "all interfaces",
    ),
    (
        "curl",
        _set(
            "services.api.healthcheck.test", ["CMD", "curl", "-f", "http://127.0.0.1:8080/readyz"]
        ),
        check_healthcheck_commands,
        "python -c",
    ),
    (
        "bad python",
        _set(
            "services.inbound.healthcheck.test", ["CMD", "python", "-c", "import urllib.request;("]
        ),
        check_healthcheck_commands,
        "not valid Python",
    ),
    (
        "wrong path",
        _set(
            "services.api.healthcheck.test",
            [
                "CMD",
                "python",
                "-c",
                "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')",
            ],
        ),
        check_healthcheck_commands,
        "/readyz",
    ),
    (
        "pg via psql",
        _set("services.postgres.healthcheck.test", ["CMD-SHELL", "psql -c 'select 1'"]),
        check_healthcheck_commands,
        "pg_isready",
    ),
    (
        "kafka script path",
        _set(
            "services.kafka.healthcheck.test",
            ["CMD", "kafka-topics.sh", "--bootstrap-server", "localhost:9092", "--list"],
        ),
        check_healthcheck_commands,
        "/opt/kafka/bin/",
    ),
    (
        "postgres published",
        _set("services.postgres.ports", ["5432:5432"]),
        check_ports,
        "postgres publishes",
    ),
    ("api unpublished", _drop("services.api.ports"), check_ports, "api must publish"),
    (
        "undeclared volume",
        _drop("volumes.kafka-data"),
        check_volumes,
        "undeclared volume 'kafka-data'",
    ),
    (
        "pg data not persisted",
        _set("services.postgres.volumes", []),
        check_volumes,
        "postgres keeps its data",
    ),
    (
        "renamed variable",
        _rename_env("api", "GAMIFY_KAFKA_BOOTSTRAP_SERVERS", "GAMIFY_KAFKA_BROKERS"),
        check_gamify_variables,
        "GAMIFY_KAFKA_BROKERS",
    ),
    (
        "hard-coded key",
        _set("services.api.environment.GAMIFY_API_KEYS", "default:secret:admin"),
        check_api_key_default,
        "overridable",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "checker", "expected"),
    [case[1:] for case in BROKEN],
    ids=[case[0] for case in BROKEN],
)
def test_checker_catches_broken_compose(
    compose: Compose, mutate: Callable[[Compose], None], checker: Checker, expected: str
) -> None:
    # YAML anchors make the Gamify services share one environment object; a JSON round trip
    # unshares them (copy.deepcopy would keep the sharing).
    broken = json.loads(json.dumps(compose))
    mutate(broken)
    problems = checker(broken)
    assert any(expected in p for p in problems), problems


def test_every_compose_checker_has_a_broken_case() -> None:
    assert {case[2] for case in BROKEN} == set(COMPOSE_CHECKERS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('ENTRYPOINT ["gamify"]', 'ENTRYPOINT ["python", "-m", "services.cli"]', "ENTRYPOINT"),
        ('CMD ["serve"]', 'CMD ["api"]', "CMD"),
        (
            "pip install --no-cache-dir .",
            "pip install --no-cache-dir -r requirements.txt",
            "pip install",
        ),
        ("USER gamify", "USER root", "root"),
        ("FROM python:3.11-slim", "FROM python:3.11", "python:3.11-slim"),
        ("EXPOSE 8080", "EXPOSE 8000", "8080"),
        ("GAMIFY_HTTP_HOST=0.0.0.0", "GAMIFY_HTTP_HOST=127.0.0.1", "GAMIFY_HTTP_HOST"),
        ("VOLUME /data", "", "VOLUME"),
    ],
)
def test_checker_catches_broken_dockerfile(old: str, new: str, expected: str) -> None:
    text = DOCKERFILE.read_text()
    assert old in text
    problems = check_dockerfile(text.replace(old, new))
    assert any(expected in p for p in problems), problems
