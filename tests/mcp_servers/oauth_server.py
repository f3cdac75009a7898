"""A real OAuth-protected MCP server on loopback: the SDK's MCPServer with its own
authorization server (`mcp.server.auth`: metadata, dynamic registration, authorize, token,
revoke) and resource server (401 with `resource_metadata`, RFC 9728 metadata). Sign-in is
approved at once (the "user" always says yes), so a test follows the redirects like a browser.

What the SDK's authorization server does not do, this one adds, each switched on per test:
Client ID Metadata Documents (`metadata_documents`: the metadata says so, and a URL client id
is fetched over HTTP and its redirect URIs enforced) and OpenID Connect identity (`identity`:
a `userinfo_endpoint`, or an RS256 `id_token` with its `jwks_uri`).
"""

import secrets
import time

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.routes import build_metadata
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.mcp_servers.servers import digest, free_port, running


class OIDCToken(OAuthToken):
    """A token response with an OpenID Connect ID token (the SDK's model has none)."""

    id_token: str | None = None


SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "loopback-1"


class MemoryProvider:
    """Every grant, in memory. `access_lifetime` is what new access tokens live; `fail_refresh`
    makes the token endpoint refuse refresh tokens. `metadata_documents` turns on Client ID
    Metadata Documents; `identity` is None, "userinfo" or "id_token"; `claims` is who signs in;
    `id_token_changes` alters the next ID tokens (to be refused): other claims, or "key" to
    sign with a key the server does not publish."""

    def __init__(self, scopes: list[str], issuer: str = ""):
        self.issuer = issuer
        self.metadata_documents = False
        self.documents_fetched: list[str] = []
        self.identity: str | None = None
        self.claims: dict = {}
        self.id_token_changes: dict = {}
        self.scopes = scopes
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.access_lifetime = 3600
        self.fail_refresh = False
        self.refreshes = 0
        self.revoked: list[str] = []
        self.authorize_params: list[AuthorizationParams] = []

    async def get_client(self, client_id):
        if client_id in self.clients:
            return self.clients[client_id]
        if self.metadata_documents and client_id.startswith(("http://", "https://")):
            return await self._client_from_document(client_id)
        return None

    async def _client_from_document(self, url: str):
        """The client a Client ID Metadata Document describes, fetched from `url` (Atelier's
        live server) as the draft says: it must name itself as client_id, and a public client
        has no secret."""
        self.documents_fetched.append(url)
        async with httpx.AsyncClient(timeout=5, follow_redirects=False) as http:
            response = await http.get(url, headers={"Accept": "application/json"})
        if response.status_code != 200:
            return None
        document = response.json()
        if document.get("client_id") != url or document.get("token_endpoint_auth_method") != (
            "none"
        ):
            return None
        return OAuthClientInformationFull(
            client_id=url,
            client_name=document.get("client_name"),
            redirect_uris=document["redirect_uris"],
            grant_types=document.get("grant_types", ["authorization_code"]),
            response_types=document.get("response_types", ["code"]),
            token_endpoint_auth_method="none",
            scope=" ".join(self.valid_scopes),
        )

    async def register_client(self, client_info):
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client, params):
        self.authorize_params.append(params)
        code = secrets.token_urlsafe(16)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or self.scopes,
            expires_at=time.time() + 300,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject="alice@example.test",
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(self, client, authorization_code):
        return self.codes.get(authorization_code)

    def id_token(self, client_id: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "user-7",
            "aud": client_id,
            "iat": now,
            "exp": now + 300,
            **self.claims,
        }
        changes = dict(self.id_token_changes)
        key = OTHER_KEY if changes.pop("key", None) else SIGNING_KEY
        claims.update(changes)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})

    def _issue(self, client_id, scopes, resource) -> OAuthToken:
        access, refresh = f"at-{secrets.token_hex(20)}", f"rt-{secrets.token_hex(20)}"
        self.access[access] = AccessToken(
            token=access,
            client_id=client_id,
            scopes=scopes,
            expires_at=int(time.time()) + self.access_lifetime,
            resource=resource,
        )
        self.refresh[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes, resource=resource
        )
        return OIDCToken(
            access_token=access,
            expires_in=self.access_lifetime,
            scope=" ".join(scopes),
            refresh_token=refresh,
            id_token=self.id_token(client_id) if self.identity == "id_token" else None,
        )

    async def exchange_authorization_code(self, client, authorization_code):
        self.codes.pop(authorization_code.code, None)
        return self._issue(client.client_id, authorization_code.scopes, authorization_code.resource)

    async def load_refresh_token(self, client, refresh_token):
        return self.refresh.get(refresh_token)

    async def exchange_refresh_token(self, client, refresh_token, scopes):
        if self.fail_refresh:
            raise TokenError("invalid_grant", "refresh refused")
        self.refreshes += 1
        self.refresh.pop(refresh_token.token, None)
        return self._issue(client.client_id, scopes or refresh_token.scopes, refresh_token.resource)

    async def load_access_token(self, token):
        found = self.access.get(token)
        if found and found.expires_at and found.expires_at < time.time():
            return None
        return found

    async def revoke_token(self, token):
        self.revoked.append(token.token)
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)

    # --- The routes the SDK's authorization server does not have ------------------------------

    def routes(self, registration, revocation) -> list[Route]:
        async def metadata(request: Request):
            document = build_metadata(self.issuer, None, registration, revocation).model_dump(
                mode="json", exclude_none=True
            )
            base = self.issuer.rstrip("/")
            if self.metadata_documents:
                document["client_id_metadata_document_supported"] = True
                document["token_endpoint_auth_methods_supported"].append("none")
            if self.identity == "userinfo":
                document["userinfo_endpoint"] = f"{base}/userinfo"
            if self.identity == "id_token":
                document["jwks_uri"] = f"{base}/jwks"
            return JSONResponse(document)

        async def userinfo(request: Request):
            value = request.headers.get("authorization", "")
            found = self.access.get(value.removeprefix("Bearer "))
            if not found or "openid" not in found.scopes:
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            return JSONResponse({"sub": "user-7", **self.claims})

        async def jwks(request: Request):
            key = jwt.algorithms.RSAAlgorithm.to_jwk(SIGNING_KEY.public_key(), as_dict=True)
            return JSONResponse({"keys": [{**key, "kid": KID, "use": "sig", "alg": "RS256"}]})

        return [
            Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
            Route("/userinfo", userinfo, methods=["GET"]),
            Route("/jwks", jwks, methods=["GET"]),
        ]


def oauth_mcp(port: int, scopes=("tools",), extra_scopes=()) -> tuple[MCPServer, MemoryProvider]:
    """`scopes` are what the tools need; `extra_scopes` (openid) may be asked for as well."""
    base = f"http://127.0.0.1:{port}"
    provider = MemoryProvider(list(scopes), issuer=base)
    provider.valid_scopes = [*scopes, *extra_scopes]
    registration = ClientRegistrationOptions(
        enabled=True, valid_scopes=provider.valid_scopes, default_scopes=list(scopes)
    )
    revocation = RevocationOptions(enabled=True)
    provider.options = (registration, revocation)
    server = MCPServer(
        "protected",
        auth_server_provider=provider,
        auth=AuthSettings(
            issuer_url=base,
            resource_server_url=f"{base}/mcp",
            validate_token_resource=True,
            required_scopes=list(scopes),
            client_registration_options=registration,
            revocation_options=revocation,
        ),
    )

    @server.tool()
    def whoami(ctx: Context) -> str:
        """The sha256 of the Authorization header this request carried."""
        return digest((ctx.headers or {}).get("authorization", ""))

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    return server, provider


def running_oauth(scopes=("tools",), extra_scopes=()):
    port = free_port()
    server, provider = oauth_mcp(port, scopes, extra_scopes)
    app = server.streamable_http_app()
    # Ahead of the SDK's own metadata route, which cannot say more than RFC 8414.
    app.router.routes[0:0] = provider.routes(*provider.options)
    live = running(server, port=port, app=app)
    return live, provider
