"""OAuth sign-in to MCP servers (the MCP authorization spec): discovery, registration, the
authorization code flow with PKCE, refresh and revocation. The protocol pieces are the `mcp`
SDK's (`mcp.client.auth`); this module decides what to store and talks through the address
guard. No token is ever returned, logged or shown: they live encrypted in OAuthConnection.
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import anyio
import httpx2
import jwt
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from mcp.client.auth import OAuthFlowError, OAuthRegistrationError, OAuthTokenError, PKCEParameters
from mcp.client.auth.oauth2 import OAuthContext, check_registration_usable
from mcp.client.auth.utils import (
    build_oauth_authorization_server_metadata_discovery_urls,
    build_protected_resource_metadata_discovery_urls,
    create_client_info_from_metadata_url,
    create_client_registration_request,
    create_oauth_metadata_request,
    extract_resource_metadata_from_www_auth,
    extract_scope_from_www_auth,
    get_client_metadata_scopes,
    handle_auth_metadata_response,
    handle_protected_resource_response,
    handle_registration_response,
    handle_token_response_scopes,
    issuers_match,
    should_use_client_metadata_url,
    union_scopes,
    validate_metadata_issuer,
)
from mcp.shared.auth import (
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthMetadata,
    OAuthToken,
)
from mcp.shared.auth_utils import check_resource_allowed, resource_url_from_server_url
from pydantic import ValidationError

from config.errors import DomainError, Invalid
from config.logging import register_secret
from credentials.crypto import is_unreadable, readable_secret
from mcp_servers import client as mcp_client
from mcp_servers.models import McpServer, OAuthClient, OAuthConnection, OAuthEvent, OAuthFlow

logger = logging.getLogger(__name__)

FLOW_SECONDS = 600  # how long a started sign-in may take
REFRESH_MARGIN = timedelta(seconds=60)  # refresh this long before the access token expires
HTTP_TIMEOUT = 10.0
MAX_TOKEN_LENGTH = 8192


class OAuthUnavailable(DomainError):
    """The authorization server could not be used (refused address, bad metadata, an error)."""

    status_code = 502
    default_message = "The server's sign-in could not be used."
    default_code = "oauth_unavailable"


class NeedsSignIn(DomainError):
    """The user has no usable connection to an OAuth server; `connect_url` says where to go."""

    status_code = 409  # not 401: Atelier's own sign-in is fine, the server's is missing
    default_code = "needs_sign_in"

    def __init__(self, server: McpServer, message: str | None = None):
        self.connect_url = f"{reverse('credentials:list')}#oauth-{server.pk}"
        super().__init__(
            (message or f"{server.name} needs you to sign in.")
            + f" Connect it at {self.connect_url}; no call was made."
        )


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _event(user, server, action: str, detail: str = "") -> None:
    OAuthEvent.objects.create(user=user, mcp_server=server, action=action, detail=detail[:300])


# --- The network side: every URL through the address guard, no redirects --------------------


def _check_oauth_url(url: str) -> None:
    """Only https, except for hosts an operator opened with MCP_ALLOWED_HOSTS."""
    host, port = mcp_client.check_url(url)
    if urlsplit(url).scheme != "https" and not mcp_client.host_is_allowed(host, port):
        raise mcp_client.McpClientError(
            mcp_client.McpClientError.REFUSED, f"Refused: {host} must be reached over https."
        )


async def _send(http: httpx2.AsyncClient, request: httpx2.Request) -> httpx2.Response:
    url = str(request.url)
    await mcp_client.guard_url(url)
    _check_oauth_url(url)
    response = await http.send(request)
    await response.aread()
    if 300 <= response.status_code < 400:
        # Redirects are never followed: another host could be anything.
        logger.info("OAuth request to %s answered a redirect; refused", request.url.host)
    return response


def _run(coroutine_function, *args):
    try:
        return anyio.run(coroutine_function, *args)
    except mcp_client.McpClientError as exc:
        raise OAuthUnavailable(exc.message) from None
    except (OAuthFlowError, OAuthRegistrationError, OAuthTokenError) as exc:
        logger.info("OAuth protocol error: %s", type(exc).__name__)
        raise OAuthUnavailable(
            f"The server's sign-in answered in a way Atelier cannot use ({type(exc).__name__})."
        ) from None
    except (httpx2.HTTPError, OSError, ValidationError, ValueError) as exc:
        raise OAuthUnavailable(
            f"The server's sign-in could not be reached ({type(exc).__name__})."
        ) from None


@dataclass
class Discovery:
    resource: str
    issuer: str
    metadata: OAuthMetadata
    scopes: str | None
    # OpenID Connect fields the SDK's RFC 8414 model leaves out.
    userinfo_endpoint: str = ""
    jwks_uri: str = ""


def _metadata_url(document: dict, name: str) -> str:
    value = document.get(name) if isinstance(document, dict) else None
    if isinstance(value, str) and len(value) <= 500 and value.startswith(("https://", "http://")):
        return value
    return ""


async def _discover(server_url: str) -> Discovery:
    """RFC 9728 then RFC 8414 / OpenID discovery, starting from the server's own 401."""
    async with mcp_client.guarded_http_client(HTTP_TIMEOUT) as http:
        # An unauthenticated MCP request: a protected server answers 401 naming its metadata.
        probe = httpx2.Request(
            "POST",
            server_url,
            json={"jsonrpc": "2.0", "id": 0, "method": "ping"},
            headers={"Accept": "application/json, text/event-stream"},
        )
        first = await _send(http, probe)
        challenged = first.status_code == 401
        challenge_scope = extract_scope_from_www_auth(first) if challenged else None
        hinted = extract_resource_metadata_from_www_auth(first) if challenged else None
        prm = None
        for url in build_protected_resource_metadata_discovery_urls(hinted, server_url):
            prm = await handle_protected_resource_response(
                await _send(http, create_oauth_metadata_request(url))
            )
            if prm is not None:
                break
        if prm is None or not prm.authorization_servers:
            raise OAuthFlowError("no protected resource metadata")
        resource = resource_url_from_server_url(server_url)
        if prm.resource and check_resource_allowed(
            requested_resource=resource, configured_resource=str(prm.resource)
        ):
            resource = str(prm.resource)
        elif prm.resource:
            raise OAuthFlowError("protected resource metadata names another resource")
        issuer = str(prm.authorization_servers[0])
        metadata, document = None, {}
        for url in build_oauth_authorization_server_metadata_discovery_urls(issuer, server_url):
            response = await _send(http, create_oauth_metadata_request(url))
            ok, found = await handle_auth_metadata_response(response)
            if found is not None:
                validate_metadata_issuer(found, issuer)
                metadata, document = found, response.json()
                break
            if not ok:
                break
        if metadata is None:
            raise OAuthFlowError("no authorization server metadata")
        if "S256" not in (metadata.code_challenge_methods_supported or ["S256"]):
            raise OAuthFlowError("the authorization server does not offer PKCE S256")
        scopes = get_client_metadata_scopes(
            challenge_scope, prm, metadata, ["authorization_code", "refresh_token"]
        )
        return Discovery(
            resource=resource,
            issuer=issuer,
            metadata=metadata,
            scopes=scopes,
            userinfo_endpoint=_metadata_url(document, "userinfo_endpoint"),
            jwks_uri=_metadata_url(document, "jwks_uri"),
        )


def _client_metadata(
    redirect_uri: str, scopes: str | None, auth_method: str = "client_secret_post"
) -> OAuthClientMetadata:
    return OAuthClientMetadata(
        client_name="Atelier",
        redirect_uris=[redirect_uri],
        scope=scopes,
        token_endpoint_auth_method=auth_method,
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        application_type="web",
    )


# --- Atelier's Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document) ----


def _site_url(request, path: str) -> str:
    """`path` on Atelier's public origin: SITE_URL, else the request's own host."""
    if settings.SITE_URL:
        return f"{settings.SITE_URL}{path}"
    return request.build_absolute_uri(path)


def oauth_client_metadata_url(request) -> str:
    """The URL that is Atelier's client id at servers supporting Client ID Metadata Documents."""
    return _site_url(request, reverse("oauth-client-metadata"))


def oauth_client_metadata_document(request) -> dict:
    """The public document behind that URL: its own URL as client_id, Atelier's callback, and
    no client secret (a public client, held to PKCE)."""
    metadata = _client_metadata(oauth_redirect_uri(request), None, "none")
    return {
        "client_id": oauth_client_metadata_url(request),
        **metadata.model_dump(mode="json", exclude_none=True),
    }


def _metadata_document_usable(url: str | None) -> bool:
    """An https URL with a path, as the draft asks; plain http only on a host an operator opened
    with MCP_ALLOWED_HOSTS (the tests' loopback)."""
    if not url:
        return False
    parts = urlsplit(url)
    if parts.path in ("", "/") or not parts.hostname or parts.username or parts.password:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and mcp_client.host_is_allowed(parts.hostname, parts.port or 80)


async def _register(discovery: Discovery, redirect_uri: str, scopes: str | None):
    async with mcp_client.guarded_http_client(HTTP_TIMEOUT) as http:
        request = create_client_registration_request(
            discovery.metadata,
            _client_metadata(redirect_uri, scopes),
            f"{urlsplit(discovery.issuer).scheme}://{urlsplit(discovery.issuer).netloc}",
        )
        info = await handle_registration_response(await _send(http, request))
        check_registration_usable(info)
        return info


def _server_secret(server: McpServer) -> str | None:
    """The pre-registered client secret (stored as NULL when there is none); a clear
    credential_unreadable when no configured key opens it any more."""
    return (
        readable_secret(
            server.oauth_client_secret,
            f"The OAuth client secret of {server.name} cannot be decrypted with the configured "
            "keys; an administrator must enter it again.",
        )
        or None
    )


def _client_info(server: McpServer, flow_or_connection) -> OAuthClientInformationFull:
    """The client credentials to present at the token endpoint."""
    if server.oauth_client_id:
        secret = _server_secret(server)
        return OAuthClientInformationFull(
            client_id=server.oauth_client_id,
            client_secret=secret,
            token_endpoint_auth_method="client_secret_post" if secret else "none",
        )
    registered = OAuthClient.objects.filter(mcp_server=server).first()
    if registered is None or registered.client_id != flow_or_connection.client_id:
        raise OAuthUnavailable("The registration this sign-in used is gone; connect again.")
    return OAuthClientInformationFull(
        client_id=registered.client_id,
        client_secret=readable_secret(
            registered.client_secret,
            "Atelier's registration at this server cannot be decrypted any more; connect again.",
        )
        or None,
        token_endpoint_auth_method=registered.token_endpoint_auth_method or None,
    )


def _token_request(
    server: McpServer, client: OAuthClientInformationFull, endpoint: str, data: dict
) -> httpx2.Request:
    context = OAuthContext(
        server_url=server.url,
        client_metadata=_client_metadata("https://unused.invalid/", None),
        storage=None,
        redirect_handler=None,
        callback_handler=None,
        client_info=client,
    )
    data = {**data, "client_id": client.client_id}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    data, headers = context.prepare_token_auth(data, headers)
    return httpx2.Request("POST", endpoint, data=data, headers=headers)


async def _post_token(request: httpx2.Request) -> tuple[OAuthToken, str]:
    """The token response, and its OpenID Connect `id_token` (the SDK's model leaves it out)."""
    async with mcp_client.guarded_http_client(HTTP_TIMEOUT) as http:
        response = await _send(http, request)
        if response.status_code not in (200, 201):
            raise OAuthTokenError(f"token endpoint answered HTTP {response.status_code}")
        token = await handle_token_response_scopes(response)
        id_token = response.json().get("id_token")
        return token, id_token if isinstance(id_token, str) else ""


# --- Who signed in (shown as "Connected as …"), when the server offers a way to tell ---------

# Asymmetric algorithms only: never "none", never a shared-secret HMAC.
ID_TOKEN_ALGORITHMS = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
]  # fmt: skip
ACCOUNT_CLAIMS = ("preferred_username", "email", "name", "sub")


async def _json_object(url: str, what: str, headers: dict[str, str] | None = None) -> dict:
    """GET a JSON object through the address guard; OAuthFlowError for any other status,
    ValueError when the body is not an object."""
    async with mcp_client.guarded_http_client(HTTP_TIMEOUT) as http:
        request = httpx2.Request(
            "GET", url, headers={"Accept": "application/json", **(headers or {})}
        )
        response = await _send(http, request)
    if response.status_code != 200:
        raise OAuthFlowError(f"{what} answered HTTP {response.status_code}")
    document = response.json()
    if not isinstance(document, dict):
        raise ValueError(f"{what} did not answer a JSON object")
    return document


async def _userinfo(endpoint: str, access_token: str) -> dict:
    """The OpenID Connect UserInfo claims for this access token."""
    return await _json_object(
        endpoint, "userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )


async def _id_token_claims(jwks_uri: str, id_token: str, issuer: str, client_id: str) -> dict:
    """The claims of an ID token whose signature one of the server's published keys (its
    `jwks_uri`) verifies, issued by the flow's issuer to Atelier's client id, not expired."""
    if len(id_token) > MAX_TOKEN_LENGTH:
        raise ValueError("id_token too long")
    try:
        header = jwt.get_unverified_header(id_token)
        algorithm = header.get("alg")
        if algorithm not in ID_TOKEN_ALGORITHMS:
            raise ValueError("id_token algorithm not accepted")
        document = await _json_object(jwks_uri, "jwks_uri")
        kid = header.get("kid")
        keys = [k for k in jwt.PyJWKSet.from_dict(document).keys if k.key_id == kid]
        if len(keys) != 1:
            raise ValueError("no single key for the id_token")
        claims = jwt.decode(
            id_token,
            keys[0],
            algorithms=[algorithm],
            audience=client_id,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            leeway=60,
        )
    except jwt.PyJWTError as exc:
        raise ValueError(f"id_token not accepted ({type(exc).__name__})") from None
    if not isinstance(claims.get("iss"), str) or not issuers_match(claims["iss"], issuer):
        raise ValueError("id_token from another issuer")
    return claims


def _account_name(claims: dict) -> str:
    for name in ACCOUNT_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str):
            value = "".join(c for c in value if c.isprintable()).strip()
            if value:
                return value[:200]
    return ""


def _learn_account(flow: OAuthFlow, token: OAuthToken, id_token: str) -> str:
    """A name for the account that signed in: from UserInfo when the server has an endpoint and
    `openid` was granted, else from a verified ID token; empty when neither tells (the page then
    says "Connected"). Never fails the sign-in."""
    granted = (token.scope or flow.scopes).split()
    sources = []
    if flow.userinfo_endpoint and "openid" in granted:
        sources.append((_userinfo, flow.userinfo_endpoint, token.access_token))
    if id_token and flow.jwks_uri:
        sources.append((_id_token_claims, flow.jwks_uri, id_token, flow.issuer, flow.client_id))
    for source, *args in sources:
        try:
            account = _account_name(_run(source, *args))
        except DomainError as exc:
            logger.info("OAuth: no account name from %s: %s", source.__name__, exc.message)
            continue
        if account:
            return account
    return ""


def _expires_at(expires_in) -> timezone.datetime | None:
    return timezone.now() + timedelta(seconds=int(expires_in)) if expires_in else None


# --- The flow ---------------------------------------------------------------------------------


def oauth_redirect_uri(request) -> str:
    """The callback every sign-in comes back to: a page of Atelier."""
    return _site_url(request, reverse("credentials:oauth-callback"))


def _oauth_server(server: McpServer) -> McpServer:
    if server.authentication != McpServer.Authentication.OAUTH:
        raise Invalid("This MCP server does not use OAuth sign-in.", code="not_oauth")
    if server.status != McpServer.Status.ACTIVE:
        raise Invalid("This MCP server is not active.", code="server_inactive")
    return server


def _client_id(
    server: McpServer, discovery: Discovery, redirect_uri: str, client_metadata_url: str | None
) -> str:
    """Who Atelier is at the server's authorization server: the admin's pre-registered client;
    else its Client ID Metadata Document URL where the server supports those; else a dynamic
    registration (RFC 7591), kept until the issuer or the callback changes."""
    if server.oauth_client_id:
        return server.oauth_client_id
    registered = OAuthClient.objects.filter(mcp_server=server).first()
    if _metadata_document_usable(client_metadata_url) and should_use_client_metadata_url(
        discovery.metadata, client_metadata_url
    ):
        info = create_client_info_from_metadata_url(client_metadata_url, [redirect_uri])
        metadata_document = True
    elif (
        registered is None
        or registered.metadata_document  # the server stopped supporting it, or the URL moved
        or is_unreadable(registered.client_secret)  # registered again, like a new server
        or registered.issuer != discovery.issuer
        or registered.redirect_uri != redirect_uri
    ):
        # The scopes the admin set too (openid, say), which the server's challenge may not name.
        scopes = union_scopes(server.oauth_scopes.strip() or None, discovery.scopes)
        info = _run(_register, discovery, redirect_uri, scopes)
        metadata_document = False
    else:
        return registered.client_id
    with transaction.atomic():
        OAuthClient.objects.update_or_create(
            mcp_server=server,
            defaults={
                "issuer": discovery.issuer,
                "redirect_uri": redirect_uri,
                "client_id": info.client_id,
                "client_secret": info.client_secret or "",
                "token_endpoint_auth_method": info.token_endpoint_auth_method or "",
                "metadata_document": metadata_document,
            },
        )
    return info.client_id


def oauth_start(
    *,
    user: AbstractBaseUser,
    server: McpServer,
    redirect_uri: str,
    session_key: str | None,
    client_metadata_url: str | None = None,
) -> str:
    """Discover, register if needed, and record a single-use flow. Returns the URL of the
    server's sign-in page to send the user to. `session_key` binds the flow to the browser
    session that started it (empty for an API token: the callback then needs the same user).
    `client_metadata_url` (oauth_client_metadata_url) is the client id to use where the
    authorization server supports Client ID Metadata Documents."""
    server = _oauth_server(server)
    if server.oauth_client_id:
        _server_secret(server)  # before any request, and before the user signs in for nothing
    discovery = _run(_discover, server.url)
    scopes = server.oauth_scopes.strip() or discovery.scopes
    pending = (
        OAuthConnection.objects.filter(user=user, mcp_server=server)
        .values_list("step_up_scopes", flat=True)
        .first()
    )
    if pending:  # step-up after insufficient_scope: what was asked for, plus what is missing
        scopes = union_scopes(scopes, discovery.scopes if pending == "*" else pending)
    client_id = _client_id(server, discovery, redirect_uri, client_metadata_url)
    pkce = PKCEParameters.generate()
    state = secrets.token_urlsafe(32)
    OAuthFlow.objects.filter(expires_at__lt=timezone.now()).delete()
    OAuthFlow.objects.create(
        state_hash=_digest(state),
        user=user,
        session_hash=_digest(session_key) if session_key else "",
        mcp_server=server,
        code_verifier=pkce.code_verifier,
        redirect_uri=redirect_uri,
        client_id=client_id,
        issuer=discovery.issuer,
        token_endpoint=str(discovery.metadata.token_endpoint),
        revocation_endpoint=str(discovery.metadata.revocation_endpoint or ""),
        userinfo_endpoint=discovery.userinfo_endpoint,
        jwks_uri=discovery.jwks_uri,
        resource=discovery.resource,
        scopes=scopes or "",
        expires_at=timezone.now() + timedelta(seconds=FLOW_SECONDS),
    )
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": pkce.code_challenge,
        "code_challenge_method": "S256",
        "resource": discovery.resource,  # RFC 8707
    }
    if scopes:
        params["scope"] = scopes
    endpoint = str(discovery.metadata.authorization_endpoint)
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{urlencode(params)}"


def _take_flow(*, user: AbstractBaseUser, state: str, session_key: str | None) -> OAuthFlow:
    """The flow this state started, consumed: any mismatch is the same refusal, so a forged,
    replayed, expired or someone else's state learns nothing."""
    refused = Invalid(
        "This sign-in link is not valid (expired, already used, or started elsewhere); "
        "start again from Connect.",
        code="oauth_state_invalid",
    )
    if not state or len(state) > 200:
        raise refused
    with transaction.atomic():
        flow = (
            OAuthFlow.objects.select_for_update()
            .select_related("mcp_server")
            .filter(state_hash=_digest(state))
            .first()
        )
        if flow is None:
            raise refused
        if flow.user_id != user.pk:
            # Leave it for its owner; a stranger's attempt does not burn it.
            raise refused
        flow.delete()  # single use, whatever happens next
    if flow.expires_at < timezone.now() or is_unreadable(flow.code_verifier):
        raise refused
    if flow.session_hash and (not session_key or _digest(session_key) != flow.session_hash):
        raise refused
    return flow


def oauth_callback(
    *,
    user: AbstractBaseUser,
    state: str,
    code: str | None,
    error: str | None = None,
    iss: str | None = None,
    session_key: str | None,
) -> OAuthConnection:
    """Finish a sign-in: check the state, exchange the code (with the PKCE verifier and the
    resource) and store the tokens encrypted."""
    flow = _take_flow(user=user, state=state, session_key=session_key)
    server = flow.mcp_server
    if error:
        raise Invalid(f"{server.name} did not grant access ({error[:100]}).", code="oauth_denied")
    if not code or len(code) > 2000:
        raise Invalid("The sign-in came back without a code.", code="oauth_denied")
    if iss is not None and iss != flow.issuer:  # RFC 9207
        raise Invalid("The sign-in came back from another issuer.", code="oauth_state_invalid")
    client = _client_info(server, flow)
    request = _token_request(
        server,
        client,
        flow.token_endpoint,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.code_verifier,
            "resource": flow.resource,
        },
    )
    token, id_token = _run(_post_token, request)
    _check_token(token.access_token)
    register_secret(token.access_token)
    if token.refresh_token:
        register_secret(token.refresh_token)
    account = _learn_account(flow, token, id_token)
    with transaction.atomic():
        connection, _ = OAuthConnection.objects.update_or_create(
            user=user,
            mcp_server=server,
            defaults={
                "status": OAuthConnection.Status.CONNECTED,
                "access_token": token.access_token,
                "refresh_token": token.refresh_token or "",
                "expires_at": _expires_at(token.expires_in),
                "scopes": (token.scope or flow.scopes)[:1000],
                "account": account,
                "client_id": flow.client_id,
                "issuer": flow.issuer,
                "token_endpoint": flow.token_endpoint,
                "revocation_endpoint": flow.revocation_endpoint,
                "resource": flow.resource,
                "refreshed_at": None,
                "step_up_scopes": "",
            },
        )
        _event(user, server, OAuthEvent.Action.CONNECTED)
    logger.info("OAuth: user %s connected to MCP server %s", user.pk, server.pk)
    return connection


def _check_token(value: str) -> None:
    if not value or len(value) > MAX_TOKEN_LENGTH or any(c in value for c in "\r\n\x00"):
        raise OAuthUnavailable("The server issued a token Atelier cannot send.")


# --- Using the connection ---------------------------------------------------------------------


def oauth_access_token(*, user: AbstractBaseUser, server: McpServer) -> str:
    """The access token to send to `server` for `user`, refreshed first when it expires within
    REFRESH_MARGIN. The row lock makes one refresh at a time per user and server: a second
    caller waits, then finds the fresh token. A failed refresh, or tokens no configured key
    opens any more, mark the connection as needing sign-in. NeedsSignIn when there is nothing
    usable."""
    why = None
    with transaction.atomic():
        connection = (
            OAuthConnection.objects.select_for_update().filter(user=user, mcp_server=server).first()
        )
        if connection is None or connection.status != OAuthConnection.Status.CONNECTED:
            raise NeedsSignIn(server)
        fresh = connection.expires_at is None or (
            connection.expires_at - REFRESH_MARGIN > timezone.now()
        )
        if is_unreadable(connection.access_token):
            _mark_needs_sign_in(connection, "the tokens cannot be decrypted any more")
            why = f"Your sign-in to {server.name} cannot be read any more."
        elif fresh:
            register_secret(connection.access_token)
            return connection.access_token
        elif not connection.refresh_token or is_unreadable(connection.refresh_token):
            _mark_needs_sign_in(connection, "expired, no usable refresh token")
            why = f"Your sign-in to {server.name} expired."
        elif not _refresh(connection, server):
            why = f"Your sign-in to {server.name} expired."
    if why:  # raised outside the transaction, which keeps the mark
        raise NeedsSignIn(server, why)
    register_secret(connection.access_token)
    return connection.access_token


def _mark_needs_sign_in(connection: OAuthConnection, detail: str) -> None:
    connection.status = OAuthConnection.Status.NEEDS_SIGN_IN
    connection.save(update_fields=["status"])
    _event(connection.user, connection.mcp_server, OAuthEvent.Action.REFRESH_FAILED, detail)


def _refresh(connection: OAuthConnection, server: McpServer) -> bool:
    """Exchange the refresh token, inside the caller's row lock."""
    register_secret(connection.refresh_token)
    try:
        client = _client_info(server, connection)
        request = _token_request(
            server,
            client,
            connection.token_endpoint,
            {
                "grant_type": "refresh_token",
                "refresh_token": connection.refresh_token,
                "resource": connection.resource,
            },
        )
        token, _ = _run(_post_token, request)
        _check_token(token.access_token)
    except DomainError as exc:
        logger.info("OAuth refresh for user %s on %s failed", connection.user_id, server.pk)
        _mark_needs_sign_in(connection, exc.message)
        return False
    register_secret(token.access_token)
    connection.access_token = token.access_token
    if token.refresh_token:  # RFC 6749 §6: an omitted one stays valid
        register_secret(token.refresh_token)
        connection.refresh_token = token.refresh_token
    connection.expires_at = _expires_at(token.expires_in)
    if token.scope:
        connection.scopes = token.scope[:1000]
    connection.refreshed_at = timezone.now()
    connection.save()
    _event(connection.user, server, OAuthEvent.Action.REFRESHED)
    return True


def oauth_mark_needs_sign_in(
    *, user: AbstractBaseUser, server: McpServer, detail: str, step_up: str | None = None
) -> None:
    """The server refused the token (401 or insufficient_scope): the user must sign in again.
    With `step_up` (the scopes an insufficient_scope challenge named, or "*"), the next sign-in
    asks for those on top of what was granted."""
    with transaction.atomic():
        connection = (
            OAuthConnection.objects.select_for_update().filter(user=user, mcp_server=server).first()
        )
        if connection is not None and connection.status == OAuthConnection.Status.CONNECTED:
            connection.status = OAuthConnection.Status.NEEDS_SIGN_IN
            if step_up:
                connection.step_up_scopes = (
                    "*" if step_up == "*" else union_scopes(connection.scopes, step_up) or ""
                )[:1000]
            connection.save(update_fields=["status", "step_up_scopes"])
            _event(user, server, OAuthEvent.Action.REFRESH_FAILED, detail)


async def _revoke(request: httpx2.Request) -> int:
    async with mcp_client.guarded_http_client(HTTP_TIMEOUT) as http:
        return (await _send(http, request)).status_code


def oauth_disconnect(*, user: AbstractBaseUser, server: McpServer) -> bool:
    """Revoke the tokens where the server offers revocation (RFC 7009), then delete them.
    The tokens are deleted even when revocation fails. False when there was no connection."""
    with transaction.atomic():
        connection = (
            OAuthConnection.objects.select_for_update().filter(user=user, mcp_server=server).first()
        )
        if connection is None:
            return False
        revoked = "no revocation endpoint"
        if connection.revocation_endpoint:
            try:
                client = _client_info(server, connection)
                for value, hint in (
                    (connection.refresh_token, "refresh_token"),
                    (connection.access_token, "access_token"),
                ):
                    if not value or is_unreadable(value):  # nothing to send; deleted below
                        continue
                    register_secret(value)
                    request = _token_request(
                        server,
                        client,
                        connection.revocation_endpoint,
                        {"token": value, "token_type_hint": hint},
                    )
                    status = _run(_revoke, request)
                    revoked = "revoked" if status == 200 else f"revocation answered HTTP {status}"
            except DomainError as exc:
                revoked = f"revocation failed: {exc.message}"
        connection.delete()
        _event(user, server, OAuthEvent.Action.DISCONNECTED, revoked)
    logger.info("OAuth: user %s disconnected from MCP server %s", user.pk, server.pk)
    return True


def oauth_connections_rotate(*, dry_run: bool = False) -> tuple[int, int]:
    """Re-encrypt every OAuth secret (tokens, PKCE verifiers, client secrets) with the first of
    FERNET_KEYS, as tokens, never decrypted to text. Returns (rotated, unreadable)."""
    from credentials.crypto import encrypted_column_rotate

    rotated = unreadable = 0
    targets = [
        (OAuthConnection, "access_token"),
        (OAuthConnection, "refresh_token"),
        (OAuthFlow, "code_verifier"),
        (OAuthClient, "client_secret"),
        (McpServer, "oauth_client_secret"),
    ]
    for model, column in targets:
        done, lost = encrypted_column_rotate(model, column, dry_run=dry_run)
        rotated += done
        unreadable += lost
    return rotated, unreadable


def oauth_connection_state(*, user: AbstractBaseUser, server: McpServer) -> dict:
    """What a user may know of their connection: never a token."""
    connection = (
        OAuthConnection.objects.defer("access_token", "refresh_token")
        .filter(user=user, mcp_server=server)
        .first()
    )
    if connection is None:
        return {"status": "not_connected", "connected": False}
    return {
        "status": connection.status,
        "connected": connection.status == OAuthConnection.Status.CONNECTED,
        "account": connection.account,
        "scopes": connection.scopes.split(),
        "expires_at": connection.expires_at,
        "connected_at": connection.connected_at,
        "refreshed_at": connection.refreshed_at,
    }
