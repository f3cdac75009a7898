"""Download tokens are bearer secrets: 32 random bytes, only their SHA-256 stored, compared in
constant time, expiring and limited in uses; the zip they open streams file by file."""

import base64
import datetime as dt
import hashlib
import hmac
import io
import os
import tracemalloc
import zipfile

import pytest
from django.test import Client
from django.utils import timezone

from config.errors import NotFound
from marketplace import services
from marketplace.models import DownloadToken
from marketplace.services import download_token_create, download_token_redeem
from projects.models import MAX_FILE_BYTES, MAX_PROJECT_BYTES, ProjectFile
from tests.factories import ListingFactory, PurchaseFactory, UserFactory

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


@pytest.fixture
def bought():
    buyer = UserFactory()
    listing = ListingFactory()
    PurchaseFactory(buyer=buyer, project=listing)
    return buyer, listing


def test_a_token_is_32_random_bytes_and_only_its_sha256_is_kept(bought):
    buyer, listing = bought
    tokens = [download_token_create(user=buyer, project=listing)[0] for _ in range(20)]

    for token in tokens:
        assert len(base64.urlsafe_b64decode(token + "=")) == 32
    assert len(set(tokens)) == len(tokens)
    stored = list(DownloadToken.objects.values_list("token_hash", flat=True))
    assert sorted(stored) == sorted(hashlib.sha256(t.encode()).hexdigest() for t in tokens)
    rows = repr(list(DownloadToken.objects.values()))
    assert not any(token in rows for token in tokens)


def test_the_stored_hash_is_compared_in_constant_time(bought, monkeypatch):
    buyer, listing = bought
    token, _ = download_token_create(user=buyer, project=listing)
    compared = []
    original = hmac.compare_digest

    def compare_digest(a, b):
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(services.hmac, "compare_digest", compare_digest)
    download_token_redeem(token=token)

    assert compared == [(hashlib.sha256(token.encode()).hexdigest(),) * 2]


def test_a_token_dies_at_its_expiry_and_after_its_uses(bought, settings):
    buyer, listing = bought
    token, record = download_token_create(user=buyer, project=listing, max_uses=2)
    assert record.expires_at - record.created_at <= dt.timedelta(
        minutes=settings.DOWNLOAD_TOKEN_TTL_MINUTES, seconds=1
    )
    download_token_redeem(token=token)
    download_token_redeem(token=token)
    with pytest.raises(NotFound):
        download_token_redeem(token=token)

    fresh, record = download_token_create(user=buyer, project=listing)
    DownloadToken.objects.filter(pk=record.pk).update(expires_at=timezone.now())
    with pytest.raises(NotFound):
        download_token_redeem(token=fresh)


def test_a_token_is_not_the_hash(bought):
    """Whoever reads the table cannot download: the stored hash is not a valid token."""
    buyer, listing = bought
    _, record = download_token_create(user=buyer, project=listing)
    with pytest.raises(NotFound):
        download_token_redeem(token=record.token_hash)


def incompressible_text(size: int) -> str:
    return base64.b64encode(os.urandom(size * 3 // 4)).decode()[:size]


def add_files(project, first: int, count: int) -> None:
    ProjectFile.objects.bulk_create(
        ProjectFile(
            project=project,
            path=f"data/part{n:02d}.txt",
            content=(text := incompressible_text(MAX_FILE_BYTES)),
            size=len(text),
        )
        for n in range(first, first + count)
    )


def streamed_peak(buyer, project) -> tuple[int, int, int]:
    """Download the project's zip through HTTP: (bytes streamed, chunks, peak traced memory)."""
    token, _ = download_token_create(user=buyer, project=project)
    tracemalloc.start()
    try:
        response = Client().get(f"/api/v1/marketplace/downloads/{token}/")
        assert response.status_code == 200
        assert response.streaming
        streamed = chunks = 0
        for chunk in response.streaming_content:
            streamed += len(chunk)
            chunks += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return streamed, chunks, peak


def test_a_20_mib_project_streams_without_being_held_in_memory(bought):
    buyer, listing = bought
    count = MAX_PROJECT_BYTES // MAX_FILE_BYTES  # the largest project: 20 files of 1 MiB
    add_files(listing, 0, 4)
    _, _, small_peak = streamed_peak(buyer, listing)
    add_files(listing, 4, count - 4)

    streamed, chunks, peak = streamed_peak(buyer, listing)

    project_bytes = count * MAX_FILE_BYTES
    assert project_bytes >= 20 * MiB
    assert streamed > project_bytes * 0.7  # it really sent the files
    assert chunks > count  # piece by piece, not one blob
    # Memory follows the largest file, not the project: five times the files, the same peak.
    assert peak < small_peak * 1.5 + MiB, (small_peak / MiB, peak / MiB)
    assert peak < project_bytes / 2, f"peak {peak / MiB:.1f} MiB for {project_bytes // MiB} MiB"


def test_the_streamed_zip_is_complete(bought):
    buyer, listing = bought
    files = {f"src/{n}.py": f"print({n})\n" * 50 for n in range(30)}
    ProjectFile.objects.bulk_create(
        ProjectFile(project=listing, path=path, content=text, size=len(text))
        for path, text in files.items()
    )
    token, _ = download_token_create(user=buyer, project=listing)

    response = Client().get(f"/api/v1/marketplace/downloads/{token}/")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))

    assert archive.testzip() is None
    folder = f"{listing.name}/"  # every file sits in one folder named after the project
    assert all(name.startswith(folder) for name in archive.namelist())
    assert {
        name.removeprefix(folder): archive.read(name).decode() for name in archive.namelist()
    } == files
