"""A client generated from /api/schema/ by openapi-python-client runs the whole user story
against a live server, with no hand-written request: every answer must have a documented
status (the client raises on others) and parse into its generated model.

The generator runs here, offline, into a temporary folder; a document it cannot turn into
working code (a dropped operation, a model that does not parse) fails this test.
"""

import importlib
import io
import json
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from django.core.cache import cache
from openapi_spec_validator import validate

from tests.factories import PASSWORD, StaffFactory
from tests.mcp_servers.servers import demo_server, running

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "atelier_client"
# No formatter hooks (the generated code is only imported), and the zip download as a file.
GENERATOR_CONFIG = """\
post_hooks: []
content_type_overrides:
  application/zip: application/octet-stream
"""


def generator() -> str:
    beside = Path(sys.executable).parent / "openapi-python-client"
    found = str(beside) if beside.exists() else shutil.which("openapi-python-client")
    assert found, "openapi-python-client is a dev dependency: pip install -e '.[dev]'"
    return found


@pytest.fixture
def client_package(live_server, tmp_path):
    """The client package generated from the live server's document, imported."""
    document = httpx.get(f"{live_server.url}/api/schema/?format=json", timeout=30).json()
    validate(document)
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(document))
    config = tmp_path / "config.yaml"
    config.write_text(GENERATOR_CONFIG)
    out = tmp_path / "generated"
    out.mkdir()
    result = subprocess.run(  # noqa: S603 - our own document, a fixed argument list
        [
            generator(),
            "generate",
            "--path",
            str(schema_file),
            "--output-path",
            str(out / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Any warning means a part of the document was not turned into code.
    assert "WARNING" not in result.stdout, result.stdout
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture
def mcp_demo(settings):
    settings.MCP_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.MCP_TIMEOUT_SECONDS = 5
    with running(demo_server()) as live:
        yield live


def test_the_whole_story_through_the_generated_client_only(client_package, live_server, mcp_demo):
    cache.clear()  # fresh throttle windows
    api = importlib.import_module(f"{PACKAGE}.api.v1")
    models = importlib.import_module(f"{PACKAGE}.models")

    def op(name):
        return importlib.import_module(f"{api.__name__}.v1_{name}")

    def answer(response, status, model):
        assert response.status_code == status, response.content
        parsed = response.parsed
        assert isinstance(parsed, model), (type(parsed), response.content)
        if hasattr(parsed, "additional_properties"):  # nothing the document does not describe
            assert parsed.additional_properties == {}, parsed.additional_properties
        return parsed

    def client(token=None):
        options = {"base_url": live_server.url, "raise_on_unexpected_status": True}
        if token is None:
            return client_package.Client(**options)
        return client_package.AuthenticatedClient(token=token, **options)  # "Bearer <token>"

    anonymous = client()

    # Two users register.
    tokens = {}
    for name in ("seller", "buyer"):
        registered = answer(
            op("auth_register_create").sync_detailed(
                client=anonymous,
                body=models.RegisterRequest(
                    username=name, email=f"{name}@example.com", password=f"{name}-Tr1cky-pass"
                ),
            ),
            201,
            models.Registered,
        )
        assert registered.user.username == name
        tokens[name] = registered.token
    seller, buyer = client(tokens["seller"]), client(tokens["buyer"])
    me = answer(op("auth_me_retrieve").sync_detailed(client=buyer), 200, models.Me)
    assert (me.username, me.is_staff) == ("buyer", False)

    # The seller creates a project, adds files and publishes it.
    project = answer(
        op("projects_create").sync_detailed(
            client=seller,
            body=models.ProjectWriteRequest(name="Lattice", description="A lattice solver"),
        ),
        201,
        models.Project,
    )
    for path, content in (("README.md", "# Lattice\n"), ("src/solver.py", "print(1)\n")):
        added = answer(
            op("projects_files_create").sync_detailed(
                project_id=project.id,
                client=seller,
                body=models.ProjectFileCreateRequest(path=path, content=content),
            ),
            201,
            models.ProjectFile,
        )
        assert added.path == path
    updated = answer(
        op("projects_files_update").sync_detailed(
            project_id=project.id,
            path="src/solver.py",
            client=seller,
            body=models.ProjectFileContentRequest(content="print('solved')\n"),
        ),
        200,
        models.ProjectFile,
    )
    assert updated.content == "print('solved')\n"
    files = answer(
        op("projects_files_list").sync_detailed(project_id=project.id, client=seller),
        200,
        models.PaginatedProjectFileSummaryList,
    )
    assert sorted(f.path for f in files.results) == ["README.md", "src/solver.py"]
    listing = answer(
        op("marketplace_listings_create").sync_detailed(
            client=seller,
            body=models.ListingPublishRequest(
                project=project.id,
                price="4.50",
                category=models.CategoryEnum("cli"),
                tags=["solver"],
            ),
        ),
        201,
        models.Listing,
    )
    assert listing.price == "4.50"

    # The buyer finds it, buys it (a retry with the same key is the same purchase) and
    # downloads it.
    found = answer(
        op("marketplace_listings_list").sync_detailed(client=anonymous, q="lattice"),
        200,
        models.PaginatedListingList,
    )
    assert [item.id for item in found.results] == [project.id]
    key = str(uuid.uuid4())
    purchases = [
        answer(
            op("marketplace_listings_purchase_create").sync_detailed(
                project_id=project.id, client=buyer, idempotency_key=key
            ),
            201,
            models.Purchase,
        )
        for _ in range(2)
    ]
    assert purchases[0].id == purchases[1].id
    download = answer(
        op("marketplace_listings_download_token_create").sync_detailed(
            project_id=project.id, client=buyer
        ),
        201,
        models.DownloadToken,
    )
    archive = answer(
        op("marketplace_downloads_retrieve").sync_detailed(token=download.token, client=anonymous),
        200,
        client_package.types.File,
    )
    with zipfile.ZipFile(io.BytesIO(archive.payload.read())) as zipped:
        assert any(name.endswith("src/solver.py") for name in zipped.namelist())

    # The buyer reviews it; a second review is a documented error with its code.
    review = answer(
        op("marketplace_listings_reviews_create").sync_detailed(
            project_id=project.id,
            client=buyer,
            body=models.ReviewWriteRequest(rating=5, title="Solid", body="Solved my lattice."),
        ),
        201,
        models.Review,
    )
    assert review.rating == 5
    again = op("marketplace_listings_reviews_create").sync_detailed(
        project_id=project.id, client=buyer, body=models.ReviewWriteRequest(rating=1)
    )
    assert answer(again, 409, models.Error).code == "already_reviewed"
    reviews = answer(
        op("marketplace_listings_reviews_list").sync_detailed(
            project_id=project.id, client=anonymous
        ),
        200,
        models.PaginatedReviewList,
    )
    assert [r.id for r in reviews.results] == [review.id]

    # The seller's stats, then the administrator's.
    (mine,) = op("marketplace_seller_stats_list").sync_detailed(client=seller).parsed
    assert isinstance(mine, models.SellerProjectStats)
    assert (mine.project, mine.purchases, mine.review_count) == (project.id, 1, 1)
    StaffFactory(username="operator")  # staff are made by operators, not through the API
    token = answer(
        op("auth_token_create").sync_detailed(
            client=anonymous,
            body=models.TokenRequestRequest(username="operator", password=PASSWORD),
        ),
        200,
        models.Token,
    )
    admin = client(token.token)
    stats = answer(op("marketplace_stats_retrieve").sync_detailed(client=admin), 200, models.Stats)
    assert (stats.completed_purchases, stats.reviews) == (1, 1)

    # An MCP tool call: the administrator adds a server, which users see unchecked, then
    # checks it; the buyer stores the key it needs and calls a tool.
    server = answer(
        op("mcp_servers_create").sync_detailed(
            client=admin,
            body=models.McpServerWriteRequest(
                name="Demo",
                transport=models.TransportEnum("streamable_http"),
                url=mcp_demo.url,
                credential_spec=[
                    models.CredentialSpecEntryRequest(key="API_TOKEN", required=True, secret=True)
                ],
                headers=models.McpServerWriteRequestHeaders.from_dict(
                    {"Authorization": "Bearer {{API_TOKEN}}"}
                ),
            ),
        ),
        201,
        models.McpServerAdmin,
    )
    listed = answer(
        op("mcp_servers_list").sync_detailed(client=buyer), 200, models.PaginatedMcpServerList
    )
    assert [(s.id, s.last_check_status) for s in listed.results] == [(server.id, None)]
    checked = answer(
        op("mcp_servers_check_create").sync_detailed(id=server.id, client=admin),
        200,
        models.McpServerAdmin,
    )
    assert checked.last_check_status == models.LastCheckStatusEnum.OK
    answer(
        op("credentials_create").sync_detailed(
            client=buyer,
            body=models.CredentialCreateRequest(
                mcp_server=server.id, key="API_TOKEN", value="buyer-demo-key"
            ),
        ),
        201,
        models.Credential,
    )
    result = answer(
        op("mcp_servers_tools_call_create").sync_detailed(
            id=server.id,
            tool_name="add",
            client=buyer,
            body=models.ToolCallRequest(
                arguments=models.ToolCallRequestArguments.from_dict({"a": 20, "b": 22})
            ),
        ),
        200,
        models.ToolCallResult,
    )
    assert (result.tool, result.text, result.truncated) == ("add", "42", False)
