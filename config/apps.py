from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """Shared plumbing with its own tables: idempotency records and the read-only switch."""

    name = "config"
    label = "config"
    verbose_name = "Operations"

    def ready(self):
        # Registers the security counters, the failed-login receiver and the review gauge.
        from config import security_signals  # noqa: F401
