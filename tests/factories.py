"""One factory per model. Factories build plain rows; services are tested through services."""

import datetime as dt
import hashlib
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from chat.models import ChatMessage
from credentials.models import Credential, CredentialEvent, mask_value
from marketplace.models import Download, DownloadToken, Purchase, RevenueEvent, Review
from mcp_servers.models import McpServer
from projects.models import Project, ProjectFile

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Project {n}")
    description = "A project."


class ListingFactory(ProjectFactory):
    """A published, active project on sale."""

    is_published = True
    published_at = factory.LazyFunction(timezone.now)
    price = Decimal("9.99")
    currency = "USD"
    category = "web-app"
    tags = factory.LazyFunction(lambda: ["python"])


class ProjectFileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProjectFile

    project = factory.SubFactory(ProjectFactory)
    path = factory.Sequence(lambda n: f"src/file{n}.py")
    content = "print('hello')\n"
    size = factory.LazyAttribute(lambda f: len(f.content.encode("utf-8")))


class McpServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = McpServer

    name = factory.Sequence(lambda n: f"Server {n}")
    slug = factory.Sequence(lambda n: f"server-{n}")
    description = "An MCP server."
    transport = McpServer.Transport.STREAMABLE_HTTP
    url = factory.Sequence(lambda n: f"https://mcp{n}.example.com/mcp")
    credential_spec = factory.LazyFunction(
        lambda: [{"key": "API_TOKEN", "label": "API token", "required": True, "secret": True}]
    )


class CredentialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Credential

    owner = factory.SubFactory(UserFactory)
    mcp_server = factory.SubFactory(McpServerFactory)
    key = "API_TOKEN"
    value = factory.Sequence(lambda n: f"secret-value-{n:08d}")
    value_hint = factory.LazyAttribute(lambda c: mask_value(c.value))


class CredentialEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CredentialEvent

    credential = factory.SubFactory(CredentialFactory)
    owner = factory.LazyAttribute(lambda e: e.credential.owner)
    actor = factory.LazyAttribute(lambda e: e.credential.owner)
    action = CredentialEvent.Action.CREATED


class ChatMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChatMessage

    owner = factory.SubFactory(UserFactory)
    project = None
    role = ChatMessage.Role.USER
    content = factory.Sequence(lambda n: f"Message {n}")


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Purchase

    buyer = factory.SubFactory(UserFactory)
    project = factory.SubFactory(ListingFactory)
    amount = factory.LazyAttribute(lambda p: p.project.price)
    currency = factory.LazyAttribute(lambda p: p.project.currency)


class ReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Review
        skip_postgeneration_save = True

    author = factory.SubFactory(UserFactory)
    project = factory.SubFactory(ListingFactory)
    rating = 4
    title = "Good"
    body = "Does what it says."

    @factory.post_generation
    def counters(review, create, extracted, **kwargs):
        """The project's review_count and rating_avg, as every review write leaves them."""
        if create:
            from marketplace.services import project_refresh_rating

            project_refresh_rating(project_id=review.project_id)


class DownloadTokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DownloadToken

    class Params:
        token = factory.Sequence(lambda n: f"test-download-token-{n:020d}")

    token_hash = factory.LazyAttribute(lambda t: hashlib.sha256(t.token.encode()).hexdigest())
    user = factory.SubFactory(UserFactory)
    project = factory.SubFactory(ListingFactory)
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(minutes=15))


class DownloadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Download

    user = factory.SubFactory(UserFactory)
    project = factory.SubFactory(ListingFactory)


class RevenueEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RevenueEvent

    kind = RevenueEvent.Kind.PURCHASE
    project = factory.SubFactory(ListingFactory)
    seller = factory.LazyAttribute(lambda e: e.project.owner)
    gross = Decimal("10.00")
    platform_fee = Decimal("1.00")
    seller_net = Decimal("9.00")
    currency = "USD"
