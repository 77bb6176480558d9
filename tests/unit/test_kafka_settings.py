"""Kafka settings: replication, the retention override, TLS/SASL variables and client options."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from services.adapters.kafka_clients import client_options, ssl_context, topic_policy
from services.adapters.kafka_topics import TopicPolicy
from services.config import ConfigError, KafkaSecurity, Settings

BOOT = {"GAMIFY_KAFKA_BOOTSTRAP_SERVERS": "k:9092"}


def settings(**env: str) -> Settings:
    return Settings.from_env({**BOOT, **env})


def test_defaults_work_on_a_one_broker_cluster() -> None:
    s = settings()
    assert (s.kafka_replication_factor, s.kafka_min_insync_replicas) == (1, 1)
    assert s.kafka_allow_finite_retention is False
    assert s.kafka_security == KafkaSecurity()
    assert client_options(s.kafka_security) == {"security_protocol": "PLAINTEXT"}
    assert topic_policy(s) == TopicPolicy(1, 1, False)


def test_serve_projects_its_own_appends_unless_turned_off() -> None:
    assert settings().project_own_appends is True
    assert settings(GAMIFY_PROJECT_OWN_APPENDS="false").project_own_appends is False


def test_production_replication_and_the_override() -> None:
    s = settings(
        GAMIFY_KAFKA_REPLICATION_FACTOR="3",
        GAMIFY_KAFKA_MIN_INSYNC_REPLICAS="2",
        GAMIFY_KAFKA_ALLOW_FINITE_RETENTION="true",
    )
    assert topic_policy(s) == TopicPolicy(3, 2, True)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"GAMIFY_KAFKA_REPLICATION_FACTOR": "0"}, "GAMIFY_KAFKA_REPLICATION_FACTOR"),
        ({"GAMIFY_KAFKA_REPLICATION_FACTOR": "three"}, "GAMIFY_KAFKA_REPLICATION_FACTOR"),
        ({"GAMIFY_KAFKA_MIN_INSYNC_REPLICAS": "2"}, "GAMIFY_KAFKA_MIN_INSYNC_REPLICAS=2 exceeds"),
        ({"GAMIFY_KAFKA_ALLOW_FINITE_RETENTION": "maybe"}, "GAMIFY_KAFKA_ALLOW_FINITE_RETENTION"),
        ({"GAMIFY_KAFKA_SECURITY_PROTOCOL": "TLS"}, "GAMIFY_KAFKA_SECURITY_PROTOCOL='TLS'"),
        ({"GAMIFY_KAFKA_SSL_CAFILE": "/ca.pem"}, "GAMIFY_KAFKA_SSL_CAFILE is set but"),
        (
            {"GAMIFY_KAFKA_SECURITY_PROTOCOL": "SSL", "GAMIFY_KAFKA_SSL_KEYFILE": "/k.pem"},
            "GAMIFY_KAFKA_SSL_KEYFILE is set without GAMIFY_KAFKA_SSL_CERTFILE",
        ),
        (
            {"GAMIFY_KAFKA_SECURITY_PROTOCOL": "SSL", "GAMIFY_KAFKA_SSL_CHECK_HOSTNAME": "nah"},
            "GAMIFY_KAFKA_SSL_CHECK_HOSTNAME",
        ),
        ({"GAMIFY_KAFKA_SASL_USERNAME": "u"}, "GAMIFY_KAFKA_SASL_USERNAME is set but"),
        (
            {"GAMIFY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "GAMIFY_KAFKA_SASL_MECHANISM": "PLAIN"},
            "needs GAMIFY_KAFKA_SASL_USERNAME",
        ),
        (
            {
                "GAMIFY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "GAMIFY_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
            },
            "GAMIFY_KAFKA_SASL_MECHANISM='OAUTHBEARER': expected one of PLAIN, SCRAM-SHA-256",
        ),
    ],
)
def test_errors_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**env)
    assert named in str(caught.value)


def sasl_env(password: str) -> dict[str, str]:
    return {
        "GAMIFY_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
        "GAMIFY_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "GAMIFY_KAFKA_SASL_USERNAME": "gamify",
        "GAMIFY_KAFKA_SASL_PASSWORD": password,
    }


def test_sasl_options_and_the_password_is_never_shown() -> None:
    s = settings(**sasl_env("hunter2-secret"))
    assert client_options(s.kafka_security) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "gamify",
        "sasl_plain_password": "hunter2-secret",
    }
    assert "hunter2-secret" not in repr(s)
    env = sasl_env("hunter2-secret")
    del env["GAMIFY_KAFKA_SASL_USERNAME"]
    with pytest.raises(ConfigError) as caught:
        settings(**env)
    assert "hunter2-secret" not in str(caught.value)


def test_tls_options_build_one_verifying_context(tmp_path: Path) -> None:
    from tests.tls import Certificates

    certs = Certificates.generate(tmp_path)
    s = settings(
        GAMIFY_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        GAMIFY_KAFKA_SSL_CAFILE=str(certs.ca),
        GAMIFY_KAFKA_SSL_CERTFILE=str(certs.client_cert),
        GAMIFY_KAFKA_SSL_KEYFILE=str(certs.client_key),
        GAMIFY_KAFKA_SSL_CHECK_HOSTNAME="false",
        GAMIFY_KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        GAMIFY_KAFKA_SASL_USERNAME="u",
        GAMIFY_KAFKA_SASL_PASSWORD="p",
    )
    options = client_options(s.kafka_security)
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert ssl_context(KafkaSecurity("SSL", ssl_cafile=str(certs.ca))).check_hostname is True


def test_unreadable_tls_files_name_the_variable(tmp_path: Path) -> None:
    from tests.tls import Certificates

    certs = Certificates.generate(tmp_path)
    with pytest.raises(ConfigError, match="GAMIFY_KAFKA_SSL_CAFILE=.*missing.pem"):
        ssl_context(KafkaSecurity("SSL", ssl_cafile=str(tmp_path / "missing.pem")))
    with pytest.raises(ConfigError, match="GAMIFY_KAFKA_SSL_CERTFILE=.*cannot load"):
        ssl_context(
            KafkaSecurity(
                "SSL",
                ssl_cafile=str(certs.ca),
                ssl_certfile=str(certs.client_cert),
                ssl_keyfile=str(certs.server_key),  # not the certificate's key
            )
        )


def test_inbound_batch_size_is_a_setting_of_at_least_one_record() -> None:
    assert Settings.from_env({}).inbound_max_records == 2_000
    assert Settings.from_env({"GAMIFY_INBOUND_MAX_RECORDS": "300"}).inbound_max_records == 300
    with pytest.raises(ConfigError, match="GAMIFY_INBOUND_MAX_RECORDS"):
        Settings.from_env({"GAMIFY_INBOUND_MAX_RECORDS": "0"})
