import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_validates_as_openapi_3(tmp_path):
    # --validate checks the document against the OpenAPI 3 specification.
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert out.read_text().startswith("openapi: 3")


def test_schema_and_docs_are_served_offline(api_client):
    schema = api_client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in [
        "/api/v1/auth/register/",
        "/api/v1/projects/{id}/",
        "/api/v1/projects/{project_id}/files/{path}",
        "/api/v1/marketplace/listings/{project_id}/purchase/",
        "/api/v1/marketplace/listings/{project_id}/reviews/mine/",
        "/api/v1/marketplace/downloads/{token}/",
        "/api/v1/marketplace/stats/",
    ]:
        assert path in paths, path
    docs = api_client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
