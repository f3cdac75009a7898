import pytest
from django.db.models import Sum

from chat.models import ChatMessage
from chat.services import chat_message_create
from config.errors import Conflict, Invalid, NotFound
from marketplace.models import Download, Purchase, Review
from marketplace.services import (
    download_token_create,
    download_token_redeem,
    purchase_create,
    purchase_refund,
    review_create,
)
from projects.models import MAX_FILE_BYTES, MAX_FILES_PER_PROJECT, Project, ProjectFile
from projects.selectors import (
    project_file_get,
    project_file_list,
    project_get_for_user,
    project_list_all,
    project_list_for_user,
)
from projects.services import (
    project_create,
    project_delete,
    project_file_create,
    project_file_delete,
    project_file_put,
    project_file_update,
    project_update,
)
from tests.factories import (
    ListingFactory,
    ProjectFactory,
    ProjectFileFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def project_state(project):
    """Everything a failed write must leave as it was."""
    row = Project.objects.values().get(pk=project.pk)
    files = list(ProjectFile.objects.filter(project=project).values_list("path", "content", "size"))
    return row, files


# ---------------------------------------------------------------- projects


def test_project_create_strips_the_name(user):
    project = project_create(owner=user, name="  My app  ", description="Does things.")

    project.refresh_from_db()
    assert (project.owner, project.name, project.description) == (user, "My app", "Does things.")
    assert (project.status, project.is_published) == ("active", False)


@pytest.mark.parametrize("name", ["", "   ", "\n\t", None, 42, "x" * 201, "a\x00b"])
def test_project_create_refuses_bad_names(user, name):
    with pytest.raises(Invalid) as excinfo:
        project_create(owner=user, name=name)

    assert excinfo.value.field == "name"
    assert Project.objects.count() == 0


@pytest.mark.parametrize("description", ["x" * 10_001, "nul \x00 inside"])
def test_project_create_refuses_bad_descriptions(user, description):
    with pytest.raises(Invalid) as excinfo:
        project_create(owner=user, name="App", description=description)

    assert excinfo.value.field == "description"
    assert Project.objects.count() == 0


def test_project_create_accepts_the_longest_description(user):
    project = project_create(owner=user, name="App", description="x" * 10_000)
    assert len(project.description) == 10_000


def test_project_update_changes_only_given_fields(user):
    project = project_create(owner=user, name="Old", description="Kept")

    project = project_update(project=project, name=" New ")

    project.refresh_from_db()
    assert (project.name, project.description) == ("New", "Kept")


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"name": "  "},
        {"name": "a\x00b"},
        {"description": "x" * 10_001},
        {"description": "\x00"},
        {"status": "deleted"},
    ],
)
def test_project_update_refuses_bad_input_and_changes_nothing(user, fields):
    project = ProjectFactory(owner=user)
    before = project_state(project)

    with pytest.raises(Invalid):
        project_update(project=project, **fields)

    assert project_state(project) == before


def test_archiving_a_project_unpublishes_it():
    listing = ListingFactory()

    project = project_update(project=listing, status="archived")

    project.refresh_from_db()
    assert (project.status, project.is_published) == ("archived", False)


def test_project_delete_without_purchases_deletes_files_and_chat(user):
    project = ProjectFactory(owner=user)
    ProjectFileFactory.create_batch(3, project=project)
    chat_message_create(owner=user, project=project, content="Hello")
    chat_message_create(owner=user, content="Not about the project")

    assert project_delete(project=project) == "deleted"

    assert not Project.objects.filter(pk=project.pk).exists()
    assert ProjectFile.objects.count() == 0
    assert list(ChatMessage.objects.values_list("content", flat=True)) == ["Not about the project"]


def test_project_delete_of_a_free_project_with_downloads_and_reviews_deletes_them():
    listing = ListingFactory(price=0)
    fan = UserFactory()
    token, _ = download_token_create(user=fan, project=listing)
    download_token_redeem(token=token)
    review_create(author=fan, project=listing, rating=5)

    assert project_delete(project=listing) == "deleted"

    assert (Download.objects.count(), Review.objects.count()) == (0, 0)


def test_project_delete_with_purchases_archives_and_keeps_everything():
    listing = ListingFactory()
    ProjectFileFactory(project=listing, path="main.py")
    buyer = UserFactory()
    purchase_create(buyer=buyer, project_id=listing.pk)

    assert project_delete(project=listing) == "archived"

    listing.refresh_from_db()
    assert (listing.status, listing.is_published) == ("archived", False)
    assert listing.files.count() == 1
    assert Purchase.objects.filter(buyer=buyer, project=listing).count() == 1


def test_project_delete_with_only_refunded_purchases_still_archives():
    listing = ListingFactory()
    purchase, _ = purchase_create(buyer=UserFactory(), project_id=listing.pk)
    purchase_refund(purchase=purchase)

    assert project_delete(project=listing) == "archived"
    assert Project.objects.filter(pk=listing.pk, status="archived").exists()


# ---------------------------------------------------------------- project selectors


def test_project_list_for_user_is_own_projects_newest_first(user, other_user):
    first = project_create(owner=user, name="First")
    second = project_create(owner=user, name="Second")
    project_create(owner=other_user, name="Someone else's")

    assert list(project_list_for_user(user=user)) == [second, first]
    assert project_list_all().count() == 3


def test_project_get_for_user_returns_own_project(user):
    project = ProjectFactory(owner=user)
    assert project_get_for_user(user=user, pk=project.pk) == project


@pytest.mark.parametrize("pk", ["not-a-uuid", None, 12, "00000000-0000-0000-0000-000000000000"])
def test_project_get_for_user_unknown_is_not_found(user, pk):
    with pytest.raises(NotFound):
        project_get_for_user(user=user, pk=pk)


def test_project_get_for_user_of_another_users_project_is_not_found(user, other_user):
    project = ProjectFactory(owner=other_user)
    with pytest.raises(NotFound):
        project_get_for_user(user=user, pk=project.pk)


@pytest.mark.parametrize("n", [1, 30])
def test_project_list_queries_do_not_grow(user, n, django_assert_num_queries):
    ProjectFactory.create_batch(n, owner=user)
    with django_assert_num_queries(1):
        names = [(p.name, p.owner.username) for p in project_list_for_user(user=user)]
    assert len(names) == n


# ---------------------------------------------------------------- files


def test_project_file_create_normalises_the_path_and_counts_bytes(user):
    project = ProjectFactory(owner=user)

    project_file = project_file_create(project=project, path="src//app/./main.py", content="é\n")

    project_file.refresh_from_db()
    assert (project_file.path, project_file.content, project_file.size) == (
        "src/app/main.py",
        "é\n",
        3,
    )
    assert project_file_get(project=project, path="src/app/main.py") == project_file


@pytest.mark.parametrize(
    "path",
    [
        "",
        "   ",
        None,
        "../secret",
        "src/../../etc/passwd",
        "a/..",
        "..",
        "/etc/passwd",
        "src\\main.py",
        "bad\x00name",
        "line\nbreak.py",
        "tab\there.py",
        "del\x7f.py",
        ".",
        "./",
        "a" * 256,
    ],
)
def test_project_file_create_refuses_bad_paths(path):
    project = ProjectFactory()
    before = project_state(project)

    with pytest.raises(Invalid) as excinfo:
        project_file_create(project=project, path=path, content="x")

    assert excinfo.value.field == "path"
    assert project_state(project) == before


def test_project_file_create_accepts_a_255_character_path():
    project = ProjectFactory()
    path = "d/" + "a" * 253
    assert project_file_create(project=project, path=path, content="").path == path


@pytest.mark.parametrize("content", [None, b"bytes", 12, "binary\x00data"])
def test_project_file_create_refuses_non_text(content):
    project = ProjectFactory()
    with pytest.raises(Invalid) as excinfo:
        project_file_create(project=project, path="a.txt", content=content)
    assert excinfo.value.field == "content"
    assert ProjectFile.objects.count() == 0


def test_project_file_create_refuses_more_than_one_mib():
    project = ProjectFactory()
    assert project_file_create(project=project, path="ok.txt", content="x" * MAX_FILE_BYTES)

    with pytest.raises(Invalid) as excinfo:
        # 1 MiB of characters, one of them two bytes long in UTF-8.
        project_file_create(
            project=project, path="big.txt", content="é" + "x" * (MAX_FILE_BYTES - 1)
        )

    assert excinfo.value.field == "content"
    assert list(project.files.values_list("path", flat=True)) == ["ok.txt"]


def test_project_file_create_refuses_a_duplicate_path():
    project = ProjectFactory()
    project_file_create(project=project, path="a.py", content="one")

    with pytest.raises(Conflict):
        project_file_create(project=project, path="./a.py", content="two")

    assert list(project.files.values_list("path", "content")) == [("a.py", "one")]


def test_project_file_create_refuses_the_1001st_file():
    project = ProjectFactory()
    ProjectFile.objects.bulk_create(
        ProjectFile(project=project, path=f"f{i}.txt", content="x", size=1)
        for i in range(MAX_FILES_PER_PROJECT - 1)
    )
    project_file_create(project=project, path="last.txt", content="x")
    before = project_state(project)

    with pytest.raises(Invalid) as excinfo:
        project_file_create(project=project, path="one-too-many.txt", content="x")

    assert "1000 files" in excinfo.value.message
    assert project_state(project) == before
    assert project.files.count() == MAX_FILES_PER_PROJECT


def test_project_file_limits_hold_twenty_mib_per_project():
    project = ProjectFactory()
    megabyte = "x" * MAX_FILE_BYTES
    for i in range(19):
        project_file_create(project=project, path=f"big{i}.txt", content=megabyte)
    last = project_file_create(project=project, path="big19.txt", content=megabyte[:-1])
    before_total = project.files.aggregate(total=Sum("size"))["total"]
    assert before_total == 20 * MAX_FILE_BYTES - 1

    # One byte fits exactly; the next does not, neither as a new file nor as a grown file.
    project_file_create(project=project, path="one-byte.txt", content="x")
    with pytest.raises(Invalid) as excinfo:
        project_file_create(project=project, path="another-byte.txt", content="y")
    assert excinfo.value.field == "content"
    with pytest.raises(Invalid):
        project_file_update(project_file=last, content=megabyte)

    assert project.files.aggregate(total=Sum("size"))["total"] == 20 * MAX_FILE_BYTES
    assert not project.files.filter(path="another-byte.txt").exists()
    last.refresh_from_db()
    assert last.size == MAX_FILE_BYTES - 1


def test_project_file_update_replaces_content_and_size():
    project_file = ProjectFileFactory(content="old")

    project_file_update(project_file=project_file, content="newer")

    project_file.refresh_from_db()
    assert (project_file.content, project_file.size) == ("newer", 5)


def test_project_file_update_refuses_too_large_content():
    project_file = ProjectFileFactory(content="old")

    with pytest.raises(Invalid):
        project_file_update(project_file=project_file, content="x" * (MAX_FILE_BYTES + 1))

    project_file.refresh_from_db()
    assert (project_file.content, project_file.size) == ("old", 3)


def test_project_file_put_creates_then_replaces():
    project = ProjectFactory()

    created_file, created = project_file_put(project=project, path="a/b.py", content="1")
    replaced_file, created_again = project_file_put(project=project, path="a//b.py", content="22")

    assert (created, created_again) == (True, False)
    assert replaced_file.pk == created_file.pk
    assert list(project.files.values_list("path", "content", "size")) == [("a/b.py", "22", 2)]


def test_project_file_put_refuses_bad_path():
    project = ProjectFactory()
    with pytest.raises(Invalid):
        project_file_put(project=project, path="../x", content="1")
    assert ProjectFile.objects.count() == 0


def test_project_file_delete_removes_only_that_file():
    project = ProjectFactory()
    keep = ProjectFileFactory(project=project, path="keep.py")
    drop = ProjectFileFactory(project=project, path="drop.py")

    project_file_delete(project_file=drop)

    assert list(project_file_list(project=project)) == [keep]


def test_project_file_get_unknown_path_is_not_found():
    project = ProjectFactory()
    other = ProjectFileFactory(path="theirs.py")
    with pytest.raises(NotFound):
        project_file_get(project=project, path="missing.py")
    with pytest.raises(NotFound):
        project_file_get(project=project, path=other.path)


def test_project_file_list_is_sorted_by_path():
    project = ProjectFactory()
    for path in ["z.py", "a/b.py", "m.py"]:
        project_file_create(project=project, path=path, content="")
    assert [f.path for f in project_file_list(project=project)] == ["a/b.py", "m.py", "z.py"]
