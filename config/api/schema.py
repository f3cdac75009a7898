"""The OpenAPI document's error answers: one `Error` body, documented where each error happens.

Views declare their successes (and errors particular to them, such as 409 or 502) with
`extend_schema`; `AutoSchema` adds the errors that follow from the view's plumbing: 400 for
input, 401 where a token is read, 403 for staff-only or cookie-authenticated writes, 404 on
paths with ids and paginated lists, 413 for bodies, 429 for throttles and 503 everywhere
(the database may be down; writes also during read-only maintenance).
"""

from types import SimpleNamespace

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import GenericAPIView


class ErrorSerializer(serializers.Serializer):
    """The shape config.api.exceptions gives every error; documented by ERROR_SCHEMA."""

    detail = serializers.CharField()
    code = serializers.CharField()
    field = serializers.CharField(required=False)


ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "Every error answer. A validation error also lists each field's messages under the "
        "field's name (additional properties)."
    ),
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, for people."},
        "code": {
            "type": "string",
            "description": (
                "What went wrong, for programs: stable, e.g. `not_found`, `required`, "
                "`already_published`, `throttled`, `read_only`."
            ),
        },
        "field": {"type": "string", "description": "The one field at fault, when there is one."},
    },
    "required": ["detail", "code"],
    "additionalProperties": {},
}

DESCRIPTIONS = {
    400: "Invalid input; `field` names the field at fault when there is one.",
    401: "Not authenticated: no token, or an invalid or expired one.",
    403: "Not allowed (staff only, a failed CSRF check for cookie sessions, or a domain rule).",
    404: "Not found, or not yours; also a page number past the last page.",
    409: "Conflicts with the current state.",
    413: "The request body is too large.",
    422: "The Idempotency-Key was already used for another request.",
    429: "Too many requests; retry after the number of seconds in Retry-After.",
    503: "The database is unavailable for a moment, or (writes) read-only maintenance; "
    "retry after the number of seconds in Retry-After.",
}


class ErrorSchema(OpenApiSerializerExtension):
    """The `Error` component: a serializer cannot say that other (field) keys may appear."""

    target_class = ErrorSerializer

    def map_serializer(self, auto_schema, direction):
        return ERROR_SCHEMA


UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error(code: int, description: str | None = None) -> OpenApiResponse:
    """An error answer for `extend_schema(responses=...)`, with the one error body."""
    return OpenApiResponse(ErrorSerializer, description=description or DESCRIPTIONS[code])


class AutoSchema(SpectacularAutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        error_body = self.resolve_serializer(ErrorSerializer, "response").ref
        body = {"application/json": {"schema": error_body}}
        responses = operation["responses"]
        for status, response in responses.items():
            if int(status) >= 400 and not response.get("content"):
                response["content"] = body  # described without a body: it has the error body
        for status in self.error_statuses():
            responses.setdefault(
                str(status), {"description": DESCRIPTIONS[status], "content": body}
            )
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def error_statuses(self) -> set[int]:
        """The errors that the view's plumbing may answer for this operation."""
        view, method = self.view, self.method
        codes = {503}
        has_body = method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        query = [
            p
            for p in self.get_override_parameters()
            if isinstance(p, OpenApiParameter) and p.location == OpenApiParameter.QUERY
        ]
        # A filter set validates the query of list operations only.
        filtered = getattr(view, "filterset_class", None) and getattr(view, "action", None) in (
            "list",
            None,
        )
        if has_body or (method == "GET" and (filtered or query)):
            codes.add(400)
        if has_body:
            codes.add(413)
        authenticators = view.get_authenticators()
        if authenticators:  # a wrong or expired token is refused even where anyone may read
            codes.add(401)
        csrf = method in UNSAFE and any(
            isinstance(a, SessionAuthentication) for a in authenticators
        )
        if csrf or self.refuses_members():
            codes.add(403)
        paginated = isinstance(view, GenericAPIView) and view.pagination_class is not None
        if "{" in self.path or (method == "GET" and paginated):
            codes.add(404)
        if view.get_throttles():
            codes.add(429)
        return codes

    def refuses_members(self) -> bool:
        """Whether the view's permissions refuse a signed-in user who is not staff: asked of
        the permissions themselves, whatever their classes (staff-only operations)."""
        member = SimpleNamespace(
            is_authenticated=True,
            is_anonymous=False,
            is_active=True,
            is_staff=False,
            is_superuser=False,
            pk=None,
            id=None,
        )
        request = SimpleNamespace(user=member, method=self.method, auth=None, query_params={})
        for permission in self.view.get_permissions():
            try:
                if not permission.has_permission(request, self.view):
                    return True
            except Exception:  # a permission that needs more of a request: assume it may refuse
                return True
        return False


NULL_ENUM_REF = {"$ref": "#/components/schemas/NullEnum"}


def nullable_enums_without_nullable(result, generator, request, public):
    """Post-processing hook, after drf-spectacular's enum hook: a nullable choice becomes
    `oneOf: [TheEnum, NullEnum]` with `nullable: true` beside it. `nullable` without a `type`
    means nothing in OpenAPI 3.0 (validators and generators flag it), and the `NullEnum`
    branch already admits null, so the keyword is dropped there. A nullable nested object
    (`allOf: [TheSerializer]`) gets its `type: object`, which makes `nullable` meaningful."""

    def visit(node):
        if isinstance(node, dict):
            if (
                node.get("nullable")
                and "type" not in node
                and NULL_ENUM_REF in node.get("oneOf", [])
            ):
                del node["nullable"]
            elif node.get("nullable") and "type" not in node and "allOf" in node:
                node["type"] = "object"  # a nullable nested serializer: an object or null
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result)
    return result
