from rest_framework.permissions import BasePermission

from config import powers


class AdminPower(BasePermission):
    """Every admin endpoint: staff holding the named admin power (config.powers), else 403
    naming the power (401 without a login). Use `AdminPower.of(powers.X)` in permission_classes,
    or `AdminPower(powers.X)` from get_permissions."""

    power = ""

    def __init__(self, power: str = "") -> None:
        if power:
            self.power = power
        self.message = powers.refusal_message(self.power)

    @classmethod
    def of(cls, power: str) -> type["AdminPower"]:
        return type(f"AdminPower_{power.replace('.', '_')}", (cls,), {"power": power})

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if powers.user_has_power(user, self.power):
            return True
        powers.power_refused(self.power)
        return False
