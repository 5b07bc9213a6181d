"""The webhooks' address guard (issue 17): only http(s) URLs with a host and no credentials, whose host resolves to
public addresses only, unless ALERT_WEBHOOKS_ALLOW_PRIVATE says the network is trusted."""

from __future__ import annotations

import ipaddress

import pytest

from projectalgo.errors import InvalidInputError
from projectalgo.notify import check_webhook_url
from projectalgo.settings import Settings, load_settings
from projectalgo.webhook_guard import URL_MAX_LENGTH, refusal
from tests.conftest import TEST_SECRET_KEY_BASE


def settings(allow_private: bool = False) -> Settings:
    env = {"APP_ENV": "test", "SECRET_KEY_BASE": TEST_SECRET_KEY_BASE}
    return load_settings(env | {"ALERT_WEBHOOKS_ALLOW_PRIVATE": "true" if allow_private else "false"})


INNER_ADDRESSES = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.1:8080/", "loopback"),
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.10/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]/hook", "loopback"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fd00::1]/", "private"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://localhost:9000/hook", "loopback"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://100.64.0.1/", "non-public"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
    ("http://[2002:a9fe:a9fe::]/", "link-local"),  # 6to4 of 169.254.169.254
    ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
]


@pytest.mark.parametrize(("url", "kind"), INNER_ADDRESSES)
def test_inner_addresses_are_refused_by_default_and_allowed_by_the_setting(url: str, kind: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        check_webhook_url(url, settings())
    assert f"a {kind} address" in refused.value.message
    assert "public addresses" in refused.value.message
    assert check_webhook_url(url, settings(allow_private=True))  # a trusted network may


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "Enter the webhook's URL."),
        ("ftp://example.com/hook", "starts with https://"),
        ("file:///etc/passwd", "starts with https://"),
        ("javascript:alert(1)", "starts with https://"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "starts with https://"),
        ("example.com/hook", "starts with https://"),
        ("https://user:secret@example.com/hook", "user names and passwords"),
        ("https:///hook", "needs a host"),
        ("https://exa mple.com/", "no spaces"),
        ("https://example.com/\nHost: x", "no spaces"),
        ("https://example.com/" + "a" * URL_MAX_LENGTH, f"at most {URL_MAX_LENGTH}"),
        ("http://[::1/", "not a URL"),
        ("https://no-such-host.invalid/hook", "could not be found"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    for trusted in (False, True):  # the setting lifts the address rule only
        with pytest.raises(InvalidInputError) as refused:
            check_webhook_url(url, settings(allow_private=trusted))
        assert reason in refused.value.message


def test_a_public_address_is_accepted_and_normalized() -> None:
    assert (
        check_webhook_url("  HTTPS://93.184.215.14:443/hook?a=1#part ", settings()) == "https://93.184.215.14/hook?a=1"
    )
    assert check_webhook_url("https://[2606:4700::1111]/x", settings()) == "https://[2606:4700::1111]/x"


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::"])
def test_public_addresses_have_no_refusal(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None
