"""TLS for tests: a throwaway CA with server and client certificates, and a tansu broker behind
a TLS-terminating stunnel proxy that it advertises to clients.

tansu 0.6.0's own ``--cert``/``--key`` do not give a TLS listener (the two options exclude each
other, and with ``--cert`` alone the port still speaks plaintext), so TLS is terminated by
stunnel (Debian package ``stunnel4``; ``make test`` installs it when missing).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.dev_broker import port_in_use
from tests.kafka_broker import TansuBroker, free_port, tansu_binary

STUNNEL_NAMES = ("stunnel4", "stunnel")
READY_TIMEOUT = 20.0


class StunnelMissing(RuntimeError):
    """No stunnel binary on PATH."""


def _name(common: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: Path, key: Any) -> Path:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _write_cert(path: Path, cert: Any) -> Path:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _validity(builder: Any) -> Any:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + datetime.timedelta(days=1)
    )


def _new_ca(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name("gamify test CA"))
        .issuer_name(_name("gamify test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write_cert(directory / "ca.pem", cert), _write_key(directory / "ca.key", key)


def _issue(
    ca: Path, ca_key: Path, stem: Path, common: str, hosts: tuple[str, ...]
) -> tuple[Path, Path]:
    """A certificate signed by the CA: for a server naming ``hosts``, else for a client."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    issuer = x509.load_pem_x509_certificate(ca.read_bytes())
    signer: Any = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if hosts else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name(common))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    )
    if hosts:
        names = [
            x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h)
            for h in hosts
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(signer, hashes.SHA256())
    return (
        _write_cert(stem.with_suffix(".pem"), cert),
        _write_key(stem.with_suffix(".key"), key),
    )


@dataclass(frozen=True, slots=True)
class Certificates:
    """PEM files of a throwaway CA, a server certificate (localhost, 127.0.0.1) and a client one."""

    ca: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def generate(cls, directory: Path) -> Certificates:
        """Write a new CA and two certificates it signed into ``directory`` (valid one day)."""
        ca, ca_key = _new_ca(directory)
        server = _issue(ca, ca_key, directory / "server", "localhost", ("localhost", "127.0.0.1"))
        client = _issue(ca, ca_key, directory / "client", "gamify", ())
        return cls(ca, ca_key, *server, *client)

    def server_for(self, directory: Path, *hosts: str) -> tuple[Path, Path]:
        """Another server certificate from the same CA, naming only ``hosts``."""
        return _issue(self.ca, self.ca_key, directory / "other-server", hosts[0], hosts)


def stunnel_binary() -> str:
    """Path of stunnel; raises StunnelMissing saying how to install it."""
    for candidate in STUNNEL_NAMES:
        found = shutil.which(candidate)
        if found:
            return found
    raise StunnelMissing(
        "the TLS tests need stunnel (a TLS-terminating proxy) and none is on PATH: run "
        "`make test` (it installs the Debian package stunnel4) or `apt-get install -y stunnel4`"
    )


class Stunnel:
    """stunnel accepting TLS on ``port`` (client certificate required) for ``target_port``.

    It presents ``server`` (certificate, key; default: the certificates' server pair).
    """

    def __init__(
        self,
        certs: Certificates,
        port: int,
        target_port: int,
        workdir: Path,
        server: tuple[Path, Path] | None = None,
    ) -> None:
        self.port = port
        cert, key = server or (certs.server_cert, certs.server_key)
        config = workdir / f"stunnel-{port}.conf"
        config.write_text(
            "\n".join(
                [
                    "foreground = yes",
                    "debug = warning",
                    "[kafka]",
                    f"accept = 127.0.0.1:{port}",
                    f"connect = 127.0.0.1:{target_port}",
                    f"cert = {cert}",
                    f"key = {key}",
                    f"CAfile = {certs.ca}",
                    "verifyChain = yes",
                    "requireCert = yes",
                    "",
                ]
            )
        )
        self._log = tempfile.TemporaryFile(prefix="stunnel-")
        self._process = subprocess.Popen(
            [stunnel_binary(), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while not port_in_use(port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"stunnel did not listen on {port}:\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        if self._log.closed:
            return ""
        self._log.flush()
        self._log.seek(0)
        return "\n".join(self._log.read().decode(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._log.close()


@dataclass(frozen=True, slots=True)
class TlsBroker:
    """A broker reachable only through TLS at ``bootstrap``; ``env`` configures Gamify for it."""

    bootstrap: str
    certs: Certificates
    env: dict[str, str]
    broker_port: int  # tansu's own (plaintext) listener


def tls_env(certs: Certificates) -> dict[str, str]:
    """Gamify's environment for a TLS broker with a client certificate and hostname check."""
    return {
        "GAMIFY_KAFKA_SECURITY_PROTOCOL": "SSL",
        "GAMIFY_KAFKA_SSL_CAFILE": str(certs.ca),
        "GAMIFY_KAFKA_SSL_CERTFILE": str(certs.client_cert),
        "GAMIFY_KAFKA_SSL_KEYFILE": str(certs.client_key),
        "GAMIFY_KAFKA_SSL_CHECK_HOSTNAME": "true",
    }


@contextlib.contextmanager
def tls_tansu(workdir: Path) -> Iterator[TlsBroker]:
    """tansu on a private port behind stunnel; the broker advertises the proxy's address."""
    from services.adapters.kafka_clients import client_options
    from services.config import kafka_security

    stunnel_binary()  # fail before starting anything
    certs = Certificates.generate(workdir)
    env = tls_env(certs)
    proxy_port, broker_port = free_port(), free_port()
    proxy = Stunnel(certs, proxy_port, broker_port, workdir)
    try:
        broker = TansuBroker(
            tansu_binary(),
            broker_port,
            advertised_port=proxy_port,
            client_options=client_options(kafka_security(env)),
        )
        with broker.start():
            yield TlsBroker(broker.bootstrap, certs, env, broker_port)
    finally:
        proxy.stop()
