"""The buyer's purchases as the API's JSON, written by PostgreSQL (config.api.rendered)."""

from django.contrib.auth import get_user_model
from django.db.models import F

from config.api.rendered import RenderedRows
from config.compiled import compiled_values
from config.json_sql import JsonRow, Text, UtcMoment
from marketplace import selectors
from marketplace.models import Purchase
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


PURCHASE_COLUMNS = [field.attname for field in Purchase._meta.concrete_fields]


def completed_purchase(*, buyer_id, project_id) -> Purchase | None:
    """The buyer's completed purchase of a project, if any, by a query compiled once per
    process: a repeat purchase is answered from this read alone. (At most one exists: the
    purchase_one_completed_per_buyer constraint.)"""
    compiled = compiled_values(
        ("completed-purchase",),
        lambda buyer, project: (
            Purchase.objects.filter(
                buyer=buyer, project_id=project, status=Purchase.Status.COMPLETED
            )
            .order_by("-created_at")
            .values(*PURCHASE_COLUMNS)[:1]
        ),
        buyer=get_user_model()._meta.pk,
        project=Project._meta.pk,
    )
    rows = compiled.rows(buyer=buyer_id, project=project_id)
    if not rows:
        return None
    values = [rows[0][name] for name in PURCHASE_COLUMNS]
    return Purchase.from_db(compiled.alias, PURCHASE_COLUMNS, values)
