"""The admin index links to the console's own pages."""

import pytest

pytestmark = pytest.mark.django_db


def test_index_links_to_the_read_only_switch(admin_client):
    response = admin_client.get("/admin/")

    assert response.status_code == 200
    assert 'href="/admin/read-only/"' in response.text
    assert 'href="/admin/marketplace/revenueevent/stats/"' in response.text
    assert admin_client.get("/admin/read-only/").status_code == 200
