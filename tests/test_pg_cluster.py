"""The throwaway clusters (the one the fault test restarts, the replica tests' primary and
standby) are their own: free ports, temporary data directories, and nothing left behind."""

import psycopg
import pytest

from tests.pg_cluster import (
    ClusterUnavailable,
    PrimaryAndStandby,
    ThrowawayCluster,
    unavailable_reason,
)


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


@pytest.mark.skipif(
    unavailable_reason("pg_basebackup") is not None,
    reason=unavailable_reason("pg_basebackup") or "",
)
def test_a_standby_streams_from_its_primary_and_both_leave_nothing_behind():
    pair = PrimaryAndStandby()
    try:
        pair.start()
        with pair.primary.connect() as conn:
            conn.execute("CREATE TABLE t (n int)")
            conn.execute("INSERT INTO t VALUES (1)")
        pair.add_standby()
        with pair.primary.connect() as conn:
            conn.execute("INSERT INTO t VALUES (2)")
        pair.wait_for_replay()
        with pair.standby.connect() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            assert conn.execute("SELECT n FROM t ORDER BY n").fetchall() == [(1,), (2,)]
        roots = [pair.primary.root, pair.standby.root]
        assert len({pair.primary.port, pair.standby.port, 5432}) == 3
    finally:
        pair.remove()
    assert not any(root.exists() for root in roots)
    assert not pair.primary.ready()
    assert not pair.standby.ready()
