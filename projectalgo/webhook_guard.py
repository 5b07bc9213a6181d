"""The address guard of members' webhooks (issue 17): the server calls a URL a member typed, so that URL must not
reach into the server's own network (a cloud's metadata address, a database on loopback, an office's LAN).

A URL is http(s) with a host and no credentials; every address its host resolves to must be public. The check
runs when the URL is saved and again at each send, where the sender connects to the very address checked (DNS
may answer differently between the two, or between a check and a connection). ALERT_WEBHOOKS_ALLOW_PRIVATE lifts
the address rule for a trusted network. No Reflex here.
"""

from __future__ import annotations

import ipaddress
import socket

import httpx

from projectalgo.errors import InvalidInputError
from projectalgo.models import AlertChannels, max_length

URL_MAX_LENGTH = max_length(AlertChannels, "webhook_url")
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv6 translations of IPv4 addresses


def parse(url: str) -> httpx.URL:
    """The URL as the sender reads it (httpx's own parser), or InvalidInputError with the reason."""
    url = url.strip()
    if not url:
        raise InvalidInputError("Enter the webhook's URL.")
    if len(url) > URL_MAX_LENGTH:
        raise InvalidInputError(f"A webhook URL has at most {URL_MAX_LENGTH} characters.")
    if any(char.isspace() or not char.isprintable() for char in url):
        raise InvalidInputError("A webhook URL has no spaces or control characters.")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise InvalidInputError("This is not a URL.") from None
    if parsed.scheme not in ("http", "https"):
        raise InvalidInputError("A webhook URL starts with https:// (or http://).")
    if not parsed.host:
        raise InvalidInputError("A webhook URL needs a host name.")
    if parsed.userinfo:
        raise InvalidInputError("Leave user names and passwords out of the webhook URL.")
    return parsed.copy_with(fragment=None)


def refusal(address: _Address) -> str | None:
    """What kind of non-public address this is, or None for a public one. An IPv6 address that carries an IPv4 one
    (IPv4-mapped, 6to4, NAT64) is judged by the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if embedded is not None:
            return refusal(embedded)
    for kind, test in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),
    ):
        if test:
            return kind
    return None


def public_address(url: httpx.URL, allow_private: bool) -> str:
    """Resolve the URL's host and return the address to connect to, once every address it resolves to is public
    (or private ones are allowed); else InvalidInputError naming the refused address. Blocking (DNS)."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise InvalidInputError(f"The host {host} could not be found.") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found))
    if not addresses:
        raise InvalidInputError(f"The host {host} could not be found.")
    if not allow_private:
        for address in addresses:
            if kind := refusal(address):
                raise InvalidInputError(
                    f"{host} leads to a {kind} address ({address}): webhooks may only call public addresses."
                )
    return str(addresses[0])
