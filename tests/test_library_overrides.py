"""No class of the project overrides a private (underscore) name of the frameworks it builds on:
such an override breaks silently when the library renames or reshapes it. Public hooks only
(docs/performance.md lists what was replaced, and why)."""

import importlib
import inspect
import pkgutil

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


def test_the_settings_use_the_libraries_own_cache_and_middleware(settings):
    """Django's Redis cache, Django's message middleware and django-csp's middleware, as
    shipped (a subclass of any of them reached into its internals)."""
    assert "csp.middleware.CSPMiddleware" in settings.MIDDLEWARE
    assert "django.contrib.messages.middleware.MessageMiddleware" in settings.MIDDLEWARE
    assert not [name for name in settings.MIDDLEWARE if "Lazy" in name]
    for alias in settings.CACHES.values():
        assert alias["BACKEND"].startswith("django.core.cache.backends.")


def test_the_compiled_reads_find_the_orm_internals_they_use():
    """config.compiled (the one survivor, see docs/performance.md) reads Django's compiler
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
