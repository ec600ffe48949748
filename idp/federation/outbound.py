"""Outbound HTTP to upstreams: timeouts always, and no private addresses (SSRF).

An upstream's URLs come from tenant configuration and from its discovery document,
so a careless or malicious entry could aim idp at its own network. Every request
resolves the host first and refuses loopback, private, link-local and reserved
addresses unless that upstream explicitly allows private networks.
"""

import ipaddress
import json
import socket
import time
from urllib.parse import urlsplit

import requests
import urllib3

TIMEOUT = (3.05, 6)  # connect, read: a dead upstream is reported well within 10 s
DEADLINE = 10  # the whole exchange: an upstream trickling its answer never trips TIMEOUT
MAX_BYTES = 1_000_000
CHUNK = 65_536


class OutboundError(Exception):
    """The upstream could not be reached, refused, or answered nonsense; ``cause`` says which."""

    def __init__(self, cause, detail=""):
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause
        self.detail = detail


def check_destination(url, allow_private=False):
    """Refuse non-http(s) URLs and, unless allowed, hosts that resolve to private addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError("bad_url", url)
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise OutboundError("unresolvable", parts.hostname) from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise OutboundError("private_address", f"{parts.hostname} resolves to {address}")


def _read_body(response, url, deadline):
    """The body as it arrives, refused past MAX_BYTES or the deadline — never buffered whole
    first (an endless body would exhaust memory) nor read in blocks that wait to be full."""
    body = bytearray()
    while chunk := response.raw.read1(CHUNK, decode_content=True):
        body += chunk
        if len(body) > MAX_BYTES:
            raise OutboundError("too_large", url)
        if time.monotonic() > deadline:
            raise OutboundError("timeout", url)
    return bytes(body)


def _request(method, url, allow_private, **kwargs):
    """``(status, body bytes)``; OutboundError if unreachable, too slow or too large."""
    check_destination(url, allow_private)
    deadline = time.monotonic() + DEADLINE
    try:
        with requests.request(
            method, url, timeout=TIMEOUT, allow_redirects=False, stream=True, **kwargs
        ) as response:
            return response.status_code, _read_body(response, url, deadline)
    except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
        raise OutboundError("timeout", url) from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise OutboundError("unreachable", f"{url}: {exc.__class__.__name__}") from exc


def _json(body):
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return None


def get_json(url, allow_private=False, bearer=None):
    """GET a JSON document; OutboundError unless it is a 200 JSON object."""
    headers = {"Accept": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    status, content = _request("GET", url, allow_private, headers=headers)
    if status != 200:
        raise OutboundError("http_status", f"{url} answered {status}")
    body = _json(content)
    if not isinstance(body, dict):
        raise OutboundError("not_json", url)
    return body


def post_form(url, data, auth=None, allow_private=False):
    """POST a form; returns ``(status, json body or {})``."""
    status, content = _request(
        "POST", url, allow_private, data=data, auth=auth, headers={"Accept": "application/json"}
    )
    body = _json(content)
    return status, body if isinstance(body, dict) else {}
