"""The buyer's purchases as the API's JSON, written by PostgreSQL (config.api.rendered)."""

from django.contrib.auth import get_user_model
from django.db.models import F

from config.api.rendered import RenderedRows
from config.json_sql import JsonRow, Text, UtcMoment
from marketplace import selectors
from projects.models import Project


def purchase_json() -> JsonRow:
    """marketplace.api.serializers.PurchaseSerializer's document, as PostgreSQL writes it."""
    return JsonRow(
        id=Text("id"),
        project=Text("project_id"),
        buyer=F("buyer__username"),
        amount=Text("amount"),
        currency=F("currency"),
        status=F("status"),
        created_at=UtcMoment("created_at"),
        refunded_at=UtcMoment("refunded_at"),
    )


def purchase_page_rows(*, user, project_id=None) -> RenderedRows:
    """selectors.purchase_list_for_user's rows (of one project, when given) for the API's
    paginator, each a `json` text."""
    placeholders = {"buyer": (get_user_model()._meta.pk, user.pk)}
    if project_id is not None:
        placeholders["project"] = (Project._meta.pk, project_id)
    return RenderedRows(
        ("my-purchases", project_id is not None),
        lambda buyer, project=None: selectors.purchase_list_for_user(
            user=buyer, project_id=project
        ),
        lambda: {"json": purchase_json()},
        **placeholders,
    )
