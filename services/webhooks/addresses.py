"""Where webhooks may go: http(s) URLs of public addresses only (server-side request forgery).

A subscription URL is chosen by an API client, and the dispatcher sends from inside the
deployment: without this check, an admin key could make Gamify call loopback services, the
private network or the cloud metadata endpoint (169.254.169.254). Names are checked when the
connection resolves them (``PublicResolver``), so a name that later resolves to a private
address (DNS rebinding) is refused at send time too. ``GAMIFY_WEBHOOKS_ALLOW_PRIVATE=true`` lifts
the address check (tests and local receivers).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class RefusedAddress(ValueError):
    """The URL or an address its host resolves to is not allowed as a webhook target."""


def is_public(address: str) -> bool:
    """Whether ``address`` (an IP) is a global unicast address: not loopback, private,
    link-local, shared (100.64/10), multicast, reserved or unspecified (IPv4-mapped included)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> str:
    """``url`` if it may be a webhook target, else RefusedAddress saying why.

    Only ``http``/``https`` with a host and no credentials; a literal IP must be public (unless
    ``allow_private``); ``localhost`` names are refused likewise. Names are checked on resolve.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RefusedAddress("only http and https URLs are allowed")
    host = parts.hostname
    if not host:
        raise RefusedAddress("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise RefusedAddress("credentials in the URL are not allowed; sign with the secret")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise RefusedAddress("the URL's port is not valid") from None
    if allow_private:
        return url
    if host == "localhost" or host.endswith(".localhost"):
        raise RefusedAddress("loopback hosts are not allowed")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return url  # a name: checked when it resolves
    if not is_public(host):
        raise RefusedAddress(f"{host} is not a public address")
    return url


class PublicResolver(AbstractResolver):
    """aiohttp resolver that refuses a host if ANY of its addresses is not public.

    The connection then uses exactly the addresses checked, so a second lookup cannot swap in
    a private one.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        refused = [r["host"] for r in found if not is_public(r["host"])]
        if refused:
            raise RefusedAddress(f"{host} resolves to non-public {', '.join(refused)}")
        return found

    async def close(self) -> None:
        await self.inner.close()


def resolver(*, allow_private: bool) -> Any:
    """The resolver of the sender's connector."""
    return DefaultResolver() if allow_private else PublicResolver()
