"""Images by URL: ``{"url": "https://..."}`` fetched under a policy, so the service never becomes a proxy.

Off unless ``URL_ALLOWED_HOSTS`` names the hosts a client may point at. Every
hop (the URL and each same-host redirect) is checked before a byte is sent:

- the scheme is https (http only with ``URL_ALLOW_HTTP``), and the URL has no user:password@;
- the host matches the allow-list (``images.example.com`` exactly, ``*.example.com`` any subdomain);
- every address the name resolves to is a public one; private, loopback, link-local, reserved and
  multicast addresses are refused unless ``URL_ALLOWED_NETWORKS`` lists them. The connection then
  goes to the address that was checked (TLS still verifies the host name), so a second DNS answer
  cannot swap in an internal address (DNS rebinding);
- redirects are followed (at most ``MAX_REDIRECTS``) only to the same host.

The body is counted while it streams and cut off past ``MAX_UPLOAD_BYTES``; the connect timeout
bounds DNS plus TCP/TLS, the read timeout bounds the whole response. Each refusal is a 4xx whose
code says which rule refused it. The fetched bytes then take the same path as an upload.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import certifi
import httpx

from core.errors import ClassifierError
from service.admission import current_ticket
from service.errors import ApiError
from service.memory import BODY_COPIES
from service.settings import Settings

MAX_REDIRECTS = 3
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ImageURL:
    """A request item that names an image by URL instead of carrying its bytes."""

    url: str


@dataclass
class Budget:
    """Bytes that the fetches of one request may hold together (a batch of URLs shares MAX_UPLOAD_BYTES)."""

    limit: int
    used: int = 0


def refused(code: str, message: str, status: int = 403) -> ApiError:
    return ApiError(status, code, message)


@dataclass(frozen=True)
class UrlPolicy:
    hosts: tuple[str, ...] = ()  # lower-case names or *.suffix patterns; empty = URL input off
    networks: tuple[IPNetwork, ...] = ()  # non-public networks that may still be reached
    allow_http: bool = False
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_bytes: int = 20 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> UrlPolicy:
        def split(text: str) -> list[str]:
            return [part.strip() for part in text.split(",") if part.strip()]

        try:
            networks = tuple(ipaddress.ip_network(n, strict=False) for n in split(settings.url_allowed_networks))
        except ValueError as exc:
            raise ValueError(f"URL_ALLOWED_NETWORKS: {exc} (expected CIDRs such as 10.20.0.0/16)") from exc
        return cls(
            hosts=tuple(h.lower().strip("[]") for h in split(settings.url_allowed_hosts)),
            networks=networks,
            allow_http=settings.url_allow_http,
            connect_timeout=settings.url_connect_timeout_s,
            read_timeout=settings.url_read_timeout_s,
            max_bytes=settings.max_upload_bytes,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.hosts)

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in self.hosts)

    def address_allowed(self, addr: IPAddress) -> bool:
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(addr in net for net in self.networks):
            return True
        return addr.is_global and not addr.is_multicast


def check_url(text: Any, policy: UrlPolicy) -> httpx.URL:
    """Parse and check scheme, credentials and host (no network yet)."""
    if not policy.enabled:
        raise refused(
            "url_input_disabled", "this server does not fetch URLs (URL_ALLOWED_HOSTS is empty); send the image itself"
        )
    if not isinstance(text, str) or not text.strip():
        raise refused("invalid_url", "url must be a non-empty string such as https://host/image.jpg", 422)
    try:
        url = httpx.URL(text.strip())
    except (httpx.InvalidURL, ValueError) as exc:
        raise refused("invalid_url", f"url is not a valid URL: {exc}", 422) from exc
    schemes = ("https", "http") if policy.allow_http else ("https",)
    if url.scheme not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise refused("url_scheme_refused", f"only {allowed} URLs are fetched, not {url.scheme or 'a relative'} URL")
    if not url.host:
        raise refused("invalid_url", "url has no host", 422)
    if url.userinfo:
        raise refused("invalid_url", "url must not carry a user name or password", 422)
    if not policy.host_allowed(url.host):
        raise refused("url_host_refused", f"host {url.host!r} is not in URL_ALLOWED_HOSTS")
    return url


async def resolve(url: httpx.URL, policy: UrlPolicy) -> str:
    """The address to connect to: every address of the name must be allowed; the first is used."""
    port = url.port or (443 if url.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(url.host, port, type=socket.SOCK_STREAM), policy.connect_timeout
        )
    except TimeoutError as exc:
        raise refused("url_timeout", f"resolving {url.host!r} took over {policy.connect_timeout:g}s", 400) from exc
    except OSError as exc:
        raise refused("url_fetch_failed", f"host {url.host!r} could not be resolved: {exc}", 400) from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    bad = [a for a in addresses if not policy.address_allowed(a)]
    if bad or not addresses:
        raise refused(
            "url_address_refused",
            f"{url.host!r} resolves to {bad[0] if bad else 'nothing'}, a private, loopback or link-local address "
            "this server does not fetch from (URL_ALLOWED_NETWORKS)",
        )
    return str(addresses[0])


def pinned(url: httpx.URL, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """The URL rewritten to the checked address, with the Host header and TLS name of the original."""
    host_header = f"[{url.host}]" if ":" in url.host else url.host
    if url.port is not None:
        host_header += f":{url.port}"
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return (
        url.copy_with(host=address),
        {"Host": host_header, "Accept": "image/*", "Accept-Encoding": "identity"},
        extensions,
    )


class UrlFetcher:
    """Fetches one image under ``policy``; raises ``ApiError`` (4xx) for every refusal."""

    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy
        self._ssl = ssl.create_default_context(cafile=certifi.where())

    async def fetch(self, text: Any, budget: Budget | None = None) -> bytes:
        """The image at ``text``; ``budget`` is shared by the other fetches of the same request."""
        p = self.policy
        budget = budget or Budget(p.max_bytes)
        url = check_url(text, p)
        timeout = httpx.Timeout(connect=p.connect_timeout, read=p.read_timeout, write=p.read_timeout, pool=None)
        async with httpx.AsyncClient(verify=self._ssl, timeout=timeout, follow_redirects=False, trust_env=False) as c:
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    async with asyncio.timeout(p.connect_timeout + p.read_timeout):
                        body, location = await self._get(c, url, budget)
                except (TimeoutError, httpx.TimeoutException) as exc:
                    raise refused("url_timeout", f"{url} did not answer within the timeouts", 400) from exc
                except httpx.HTTPError as exc:
                    raise refused("url_fetch_failed", f"{url} could not be fetched: {exc}", 400) from exc
                if location is None:
                    return body
                url = self._redirect(url, location)
        raise refused("url_fetch_failed", f"{text} redirected more than {MAX_REDIRECTS} times", 400)

    def _redirect(self, url: httpx.URL, location: str) -> httpx.URL:
        target = url.join(location)
        if (target.host or "").lower() != url.host.lower():
            raise refused("url_redirect_refused", f"{url} redirects to another host ({target.host!r}); not followed")
        return check_url(str(target), self.policy)

    async def _get(self, client: httpx.AsyncClient, url: httpx.URL, budget: Budget) -> tuple[bytes, str | None]:
        """One hop: the body, or the Location of a redirect."""
        address = await resolve(url, self.policy)
        target, headers, extensions = pinned(url, address)
        request = client.build_request("GET", target, headers=headers, extensions=extensions)
        response = await client.send(request, stream=True)
        try:
            if response.is_redirect:
                return b"", response.headers["location"]
            if response.status_code != 200:
                raise refused("url_fetch_failed", f"{url} answered HTTP {response.status_code}", 400)
            return await self._read(response, url, budget), None
        finally:
            await response.aclose()

    async def _read(self, response: httpx.Response, url: httpx.URL, budget: Budget) -> bytes:
        limit = self.policy.max_bytes
        too_large = refused(
            "payload_too_large",
            f"the image at {url} is over the {limit:,}-byte limit (MAX_UPLOAD_BYTES; a batch's URLs share it)",
            413,
        )
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and budget.used + int(declared) > budget.limit:
            raise too_large
        body = bytearray()
        ticket = current_ticket()  # the fetched bytes count against the server's memory budget like a body
        account = None if ticket is None else ticket.account
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                budget.used += len(chunk)
                if budget.used > budget.limit:
                    raise too_large
                if account is not None:
                    await account.reserve_body(BODY_COPIES * len(chunk), "this URL's image")
        except ApiError:
            budget.used -= len(body)  # a refused image gives its share back to the others
            raise
        return bytes(body)


async def resolve_items(
    items: list[bytes | ClassifierError | ImageURL], fetcher: UrlFetcher
) -> list[bytes | ClassifierError]:
    """Fetch the URL items of a batch concurrently, sharing one byte budget; a refused URL becomes that item's error."""
    budget = Budget(fetcher.policy.max_bytes)

    async def one(item: bytes | ClassifierError | ImageURL) -> bytes | ClassifierError:
        if not isinstance(item, ImageURL):
            return item
        try:
            return await fetcher.fetch(item.url, budget)
        except ClassifierError as exc:
            return exc

    return list(await asyncio.gather(*(one(item) for item in items)))
