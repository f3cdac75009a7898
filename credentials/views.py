"""My credentials: per active MCP server, the keys it asks for; only masked hints are shown."""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from config.errors import DomainError
from config.forms import add_domain_error
from config.views import domain_errors
from credentials import selectors, services
from credentials.forms import CredentialForm
from credentials.models import Credential
from mcp_servers import oauth_services
from mcp_servers.models import McpServer
from mcp_servers.selectors import mcp_server_list_for_user


@dataclass
class KeySlot:
    """One key a server asks for, with the user's saved credential (if any) and its form."""

    entry: dict
    credential: Credential | None
    form: CredentialForm = field(default_factory=CredentialForm)

    @property
    def key(self) -> str:
        return self.entry["key"]


def _user_keys(spec: list) -> list[dict]:
    """The per-user entries of a credential_spec; shared keys are set by administrators."""
    return [e for e in spec if isinstance(e, dict) and e.get("key") and not e.get("shared")]


def _servers(user) -> list[McpServer]:
    return list(mcp_server_list_for_user(user=user).order_by("name"))


def _page(request, *, bound: tuple[str, str, CredentialForm] | None = None, status=200):
    saved = {
        (c.mcp_server_id, c.key): c for c in selectors.credential_list_for_user(user=request.user)
    }
    servers = []
    for server in _servers(request.user):
        if server.authentication == McpServer.Authentication.OAUTH:
            server.oauth_state = oauth_services.oauth_connection_state(
                user=request.user, server=server
            )
            servers.append((server, []))
            continue
        slots = []
        for entry in _user_keys(server.credential_spec):
            slot = KeySlot(entry=entry, credential=saved.get((server.pk, entry["key"])))
            if bound and bound[0] == str(server.pk) and bound[1] == entry["key"]:
                slot.form = bound[2]
            slots.append(slot)
        servers.append((server, slots))
    return render(request, "credentials/credential_list.html", {"servers": servers}, status=status)


def _server_and_key(user, server_id, key) -> McpServer:
    """An active server the user may see, and a per-user key of its spec; else 404."""
    server = mcp_server_list_for_user(user=user).filter(pk=server_id).first()
    if server is None or key not in {e["key"] for e in _user_keys(server.credential_spec)}:
        raise Http404("This MCP server or key is not available.")
    return server


@login_required
def credential_list(request):
    return _page(request)


@login_required
@domain_errors
@require_http_methods(["POST"])
def credential_set(request, server_id, key):
    server = _server_and_key(request.user, server_id, key)
    form = CredentialForm(request.POST)
    if form.is_valid():
        try:
            credential = services.credential_set(
                owner=request.user,
                server=server,
                key=key,
                value=form.cleaned_data["value"],
                actor=request.user,
                ip=request.META.get("REMOTE_ADDR") or None,
            )
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, f"{key} for {server.name} saved ({credential.value_hint}).")
            return redirect("credentials:list")
    return _page(request, bound=(str(server.pk), key, form), status=400)


@login_required
@domain_errors
@require_http_methods(["POST"])
def credential_delete(request, server_id, key):
    server = _server_and_key(request.user, server_id, key)
    credential = (
        selectors.credential_list_for_user(user=request.user, mcp_server_id=server.pk)
        .filter(key=key)
        .first()
    )
    if credential is None:
        raise Http404("No value is saved for this key.")
    services.credential_delete(
        credential=credential, actor=request.user, ip=request.META.get("REMOTE_ADDR") or None
    )
    messages.success(request, f"{key} for {server.name} deleted.")
    return redirect("credentials:list")


def _oauth_server(user, server_id) -> McpServer:
    server = mcp_server_list_for_user(user=user).filter(pk=server_id).first()
    if server is None or server.authentication != McpServer.Authentication.OAUTH:
        raise Http404("This MCP server does not use OAuth sign-in.")
    return server


@login_required
@require_http_methods(["POST"])
def oauth_connect(request, server_id):
    """Send the user to the server's sign-in page; the flow is bound to this session."""
    server = _oauth_server(request.user, server_id)
    if not request.session.session_key:
        request.session.save()
    try:
        url = oauth_services.oauth_start(
            user=request.user,
            server=server,
            redirect_uri=oauth_services.oauth_redirect_uri(request),
            session_key=request.session.session_key,
            client_metadata_url=oauth_services.oauth_client_metadata_url(request),
        )
    except DomainError as exc:
        messages.error(request, f"{server.name}: {exc.message}")
        return redirect("credentials:list")
    host = urlsplit(url).hostname or ""
    return render(
        request, "credentials/oauth_continue.html", {"server": server, "url": url, "host": host}
    )


@login_required
@require_http_methods(["GET"])
def oauth_callback(request):
    try:
        connection = oauth_services.oauth_callback(
            user=request.user,
            state=request.GET.get("state", ""),
            code=request.GET.get("code"),
            error=request.GET.get("error"),
            iss=request.GET.get("iss"),
            session_key=request.session.session_key,
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("credentials:list")
    messages.success(request, f"Connected to {connection.mcp_server.name}.")
    return redirect(f"{reverse('credentials:list')}#oauth-{connection.mcp_server_id}")


@login_required
@require_http_methods(["POST"])
def oauth_disconnect(request, server_id):
    server = _oauth_server(request.user, server_id)
    if oauth_services.oauth_disconnect(user=request.user, server=server):
        messages.success(request, f"Disconnected from {server.name}.")
    return redirect("credentials:list")


@require_http_methods(["GET", "HEAD"])
def oauth_client_metadata(request):
    """Atelier's Client ID Metadata Document: public, its URL is Atelier's client id at
    authorization servers that fetch client metadata instead of taking registrations."""
    response = JsonResponse(oauth_services.oauth_client_metadata_document(request))
    response["Cache-Control"] = "public, max-age=3600"
    return response
