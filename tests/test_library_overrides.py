"""No class of the project overrides a private (underscore) name of the frameworks it builds on:
such an override breaks silently when the library renames or reshapes it. Public hooks only,
but for those kept for their measured gain on the hot paths (docs/performance.md): django-csp's
policy built once, and one redis-py client per pool in Django's Redis cache. Each private name
they read is checked here, so an upgrade that moves one fails here first, saying which."""

import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from csp.exceptions import CSPNonceError

PROJECT_PACKAGES = (
    "accounts",
    "chat",
    "config",
    "credentials",
    "legacy",
    "marketplace",
    "mcp_servers",
    "projects",
)
LIBRARIES = ("django", "rest_framework", "knox", "csp", "redis", "psycopg", "psycopg_pool")


def project_modules():
    for package_name in PROJECT_PACKAGES:
        package = importlib.import_module(package_name)
        yield package
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if ".migrations" in info.name or info.name.endswith(".tests"):
                continue
            yield importlib.import_module(info.name)


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def library_overrides():
    found = set()
    for module in project_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            bases = [base for base in cls.__mro__[1:] if base.__module__.split(".")[0] in LIBRARIES]
            for name, value in vars(cls).items():
                # Methods only: metaclasses write their own `_meta`, `_declared_fields`...
                method = inspect.isfunction(value) or isinstance(
                    value, (property, classmethod, staticmethod)
                )
                if method and private(name) and any(name in vars(base) for base in bases):
                    found.add(f"{cls.__module__}.{cls.__qualname__}.{name}")
    return found


def test_no_class_overrides_a_private_name_of_a_library():
    assert library_overrides() == set()


def test_the_settings_use_the_libraries_own_cache_and_middleware_but_the_kept_ones(settings):
    """Django's message middleware as shipped; django-csp's middleware and Django's Redis cache
    only through the subclasses that docs/performance.md lists with their gains."""
    assert "django.contrib.messages.middleware.MessageMiddleware" in settings.MIDDLEWARE
    assert "config.middleware.CSPMiddleware" in settings.MIDDLEWARE
    assert not [name for name in settings.MIDDLEWARE if "Lazy" in name]
    for alias in settings.CACHES.values():
        assert alias["BACKEND"].startswith("django.core.cache.backends.") or (
            alias["BACKEND"] == "config.cache.RedisCache"
        )
    text = Path(__file__).resolve().parent.parent.joinpath("docs", "performance.md").read_text()
    for kept in ("config.middleware.CSPMiddleware", "config.cache.RedisCache"):
        assert kept in text, f"the kept override {kept} is not listed there"


def test_the_redis_cache_finds_the_django_internals_it_reads():
    """config.cache.RedisCache: Django's RedisCache names its client class `_class`; the client
    keeps `_client` (redis.Redis) and `_get_connection_pool(write)`. One client per pool is
    handed out, and it still reaches Redis."""
    import redis
    from django.core.cache.backends import redis as django_redis

    from config.cache import RedisCache, RedisCacheClient

    cache = RedisCache("redis://127.0.0.1:6379/9", {})
    assert cache._class is RedisCacheClient
    assert isinstance(cache._cache, django_redis.RedisCacheClient)
    assert cache._cache._client is redis.Redis
    assert list(inspect.signature(cache._cache._get_connection_pool).parameters) == ["write"]
    assert cache._cache.get_client(write=True) is cache._cache.get_client(write=True)
    try:
        cache.set("library-overrides-check", 1, timeout=5)
    except redis.ConnectionError:
        pytest.skip("needs Redis at 127.0.0.1:6379")
    assert cache.get("library-overrides-check") == 1
    cache.delete("library-overrides-check")


def test_the_csp_middleware_finds_the_django_csp_internals_it_reads(rf, settings):
    """config.middleware.CSPMiddleware: django-csp's exemption marks (`_csp_exempt`,
    `_csp_exempt_ro`) and its policy parts; its headers are the same as django-csp's own,
    for a plain response, an exempt one, and one with a policy of its own."""
    import csp.middleware
    from csp.decorators import csp_exempt, csp_update
    from django.http import HttpResponse

    from config.middleware import CSPMiddleware

    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"img-src": ["'self'"]}}
    assert [field.name for field in dataclasses.fields(csp.middleware.PolicyParts)] == [
        "config",
        "update",
        "replace",
        "nonce",
    ]
    assert getattr(csp_exempt()(HttpResponse)(), "_csp_exempt", None) is True
    assert getattr(csp_exempt(REPORT_ONLY=True)(HttpResponse)(), "_csp_exempt_ro", None) is True
    views = {
        "plain": HttpResponse,
        "exempt": csp_exempt()(HttpResponse),
        "exempt_ro": csp_exempt(REPORT_ONLY=True)(HttpResponse),
        "own": csp_update({"img-src": ["data:"]})(HttpResponse),
    }
    headers = ("Content-Security-Policy", "Content-Security-Policy-Report-Only")
    for name, view in views.items():
        answers = []
        for middleware in (CSPMiddleware, csp.middleware.CSPMiddleware):
            response = middleware(lambda request, view=view: view())(rf.get("/"))
            answers.append([response.get(header) for header in headers])
        assert answers[0] == answers[1], name
        assert answers[0] != [None, None] or name.startswith("exempt"), name
    request = rf.get("/")
    CSPMiddleware(lambda request: HttpResponse())(request)
    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)  # a nonce asked for after the header is written


def test_the_compiled_reads_find_the_orm_internals_they_use():
    """config.compiled (kept for its gain, see docs/performance.md) reads Django's compiler
    and psycopg's loaders directly: this fails first, and says what moved, on an upgrade."""
    import psycopg
    from django.db.models.sql.compiler import SQLCompiler

    from projects.models import Project

    assert list(inspect.signature(SQLCompiler.as_sql).parameters)[:3] == [
        "self",
        "with_limits",
        "with_col_aliases",
    ]
    assert list(inspect.signature(SQLCompiler.get_converters).parameters) == [
        "self",
        "expressions",
    ]
    query = Project.objects.values("id", "name").query
    for name in ("selected", "extra_select", "values_select", "annotation_select"):
        assert hasattr(query, name), f"Query.{name} is gone"
    compiler = query.get_compiler("default")
    assert "SELECT" in compiler.as_sql()[0]
    assert compiler.col_count == 2
    assert [selected[0].target.name for selected in compiler.select[:2]] == ["id", "name"]
    oid = psycopg.adapters.types["timestamptz"].oid
    assert psycopg.adapters.get_loader(oid, psycopg.pq.Format.TEXT) is not None
