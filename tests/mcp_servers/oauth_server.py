"""A real OAuth-protected MCP server on loopback: the SDK's MCPServer with its own
authorization server (`mcp.server.auth`: metadata, dynamic registration, authorize, token,
revoke) and resource server (401 with `resource_metadata`, RFC 9728 metadata). Sign-in is
approved at once (the "user" always says yes), so a test follows the redirects like a browser.
"""

import secrets
import time

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from tests.mcp_servers.servers import digest, free_port, running


class MemoryProvider:
    """Every grant, in memory. `access_lifetime` is what new access tokens live; `fail_refresh`
    makes the token endpoint refuse refresh tokens."""

    def __init__(self, scopes: list[str]):
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
        return self.clients.get(client_id)

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
        return OAuthToken(
            access_token=access,
            expires_in=self.access_lifetime,
            scope=" ".join(scopes),
            refresh_token=refresh,
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


def oauth_mcp(port: int, scopes=("tools",)) -> tuple[MCPServer, MemoryProvider]:
    base = f"http://127.0.0.1:{port}"
    provider = MemoryProvider(list(scopes))
    server = MCPServer(
        "protected",
        auth_server_provider=provider,
        auth=AuthSettings(
            issuer_url=base,
            resource_server_url=f"{base}/mcp",
            validate_token_resource=True,
            required_scopes=list(scopes),
            client_registration_options=ClientRegistrationOptions(
                enabled=True, valid_scopes=list(scopes), default_scopes=list(scopes)
            ),
            revocation_options=RevocationOptions(enabled=True),
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


def running_oauth(scopes=("tools",)):
    port = free_port()
    server, provider = oauth_mcp(port, scopes)
    live = running(server, port=port)
    return live, provider
