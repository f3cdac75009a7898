"""The users in the admin: Django's UserAdmin with the account rules of accounts.services
(names checked like on sign-up; a password change ends the user's sessions and tokens) and an
action to log users out everywhere."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError

from accounts import services
from config.errors import Invalid

User = get_user_model()


def _checked_username(form, *, exclude_pk=None) -> str | None:
    username = form.cleaned_data.get("username")
    if username is None:
        return None
    try:
        username = services.username_clean(username)
    except Invalid as exc:
        raise ValidationError(exc.message) from None
    if services.username_taken(username, exclude_pk=exclude_pk):
        raise ValidationError(services.USERNAME_TAKEN)
    return username


class AccountCreationForm(AdminUserCreationForm):
    def clean_username(self):
        return _checked_username(self)


class AccountChangeForm(UserChangeForm):
    def clean_username(self):
        return _checked_username(self, exclude_pk=self.instance.pk)


admin.site.unregister(User)


@admin.register(User)
class AccountAdmin(UserAdmin):
    form = AccountChangeForm
    add_form = AccountCreationForm
    actions = ("logout_everywhere",)

    @admin.action(
        description="Log out everywhere (end their sessions and API tokens)",
        permissions=["change"],
    )
    def logout_everywhere(self, request, queryset):
        ended = sum(services.user_logout_everywhere(user=user) for user in queryset)
        self.message_user(
            request,
            f"Ended {ended} sessions and tokens of {len(queryset)} users.",
            messages.SUCCESS,
        )

    def user_change_password(self, request, id, form_url=""):
        before = User.objects.filter(pk=id).values_list("password", flat=True).first()
        response = super().user_change_password(request, id, form_url)
        user = User.objects.filter(pk=id).first()
        if user is not None and before is not None and user.password != before:
            own = user.pk == request.user.pk
            services.sessions_end(
                user=user, keep_session=request.session.session_key if own else None
            )
        return response
