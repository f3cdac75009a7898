"""`/admin/read-only/`: staff see the read-only switch; the "switch read-only" power flips it."""

from django.conf import settings
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods

from config import powers
from config.models import ReadOnlySwitch
from config.readonly import read_only_set, read_only_state


@require_http_methods(["GET", "POST"])
def read_only_toggle(request):
    if request.method == "POST":
        powers.require_power(request.user, powers.SWITCH_READ_ONLY)
        enabled = request.POST.get("enabled") == "1"
        read_only_set(enabled=enabled, actor=request.user, reason=request.POST.get("reason", ""))
        if enabled:
            messages.warning(request, "Read-only is on: every write now answers 503.")
        else:
            messages.success(request, "Read-only is off: writes are accepted again.")
        return redirect("admin-read-only")
    enabled, reason = read_only_state()
    switch = ReadOnlySwitch.objects.select_related("changed_by").filter(pk=1).first()
    context = {
        **admin.site.each_context(request),
        "title": "Read-only switch",
        "enabled": enabled,
        "reason": reason,
        "switch": switch,
        "from_environment": bool(settings.READ_ONLY),
        "can_change": powers.user_has_power(request.user, powers.SWITCH_READ_ONLY),
    }
    return TemplateResponse(request, "admin/readonly_toggle.html", context)


view = admin.site.admin_view(read_only_toggle)
