"""The throwaway cluster the fault test restarts is its own: a free port, a temporary data
directory, and nothing left behind."""

import psycopg
import pytest

from tests.pg_cluster import ClusterUnavailable, ThrowawayCluster


@pytest.fixture
def cluster():
    try:
        with ThrowawayCluster() as started:
            yield started
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))


def test_a_throwaway_cluster_restarts_and_leaves_nothing_behind(cluster):
    root = cluster.root
    assert cluster.port != 5432
    cluster.create_database("scratch")
    with psycopg.connect(cluster.url("scratch")) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (1)")
    cluster.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.url("scratch"), connect_timeout=2)
    cluster.start()
    with psycopg.connect(cluster.url("scratch")) as conn:
        assert conn.execute("SELECT n FROM t").fetchone() == (1,)
    cluster.__exit__(None, None, None)
    assert not root.exists()
    assert not cluster.ready()
