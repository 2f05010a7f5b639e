"""Follow-ups on a real Redis Cluster: three primaries started here, the app processes' trackers
and two workers given ``redis+cluster://`` and one node's address."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.cluster import RedisCluster as ClusterClient

from cxmetrics.followup import store
from cxmetrics.instrument.redaction import make_redactor
from cxmetrics.spec.load import parse_spec
from tests.helpers.followup_app import CUSTOMER_KEY, spec_text, stalls
from tests.helpers.followup_procs import (
    Receiver,
    app_result,
    start_app,
    start_worker,
    stop,
)
from tests.helpers.redis_cluster import RedisCluster
from tests.helpers.servers import wait_for

REF = make_redactor(CUSTOMER_KEY, None)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    nodes = RedisCluster(tmp_path / "cluster").start()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.mark.slow
def test_exactly_the_stalled_instances_are_delivered_once_on_a_cluster(
    tmp_path: Path, cluster: RedisCluster
) -> None:
    """2,000 journeys over 2 app processes, 7% stall at the key step, 2 workers, 3 primaries."""
    receiver = Receiver(tmp_path)
    text = spec_text(webhook=receiver.url, after="2s")
    (tmp_path / "spec.yaml").write_text(text)
    workers = [
        start_worker(tmp_path, tmp_path / "spec.yaml", cluster.url, f"worker{k}") for k in range(2)
    ]
    try:
        share = 1_000
        apps = [start_app(cluster.url, k * share, share, 7) for k in range(2)]
        results = [app_result(p) for p in apps]
        assert all(r["flushed"] for r in results)
        assert sum(r["stalled"] for r in results) == 140
        # The store's partitions are spread over the three primaries (one slot per script).
        client: Any = ClusterClient(host="127.0.0.1", port=cluster.ports[0])
        nodes = {
            client.get_node_from_key(p.key("due")).name for p in store.partitions(parse_spec(text))
        }
        assert len(nodes) == 3
        wait_for(lambda: receiver.stats()["accepted"] >= 140, 120, "140 deliveries")
        time.sleep(3.0)  # longer than 'after': a stranger would have arrived by now
        items = receiver.items()
        expected = {REF(f"customer-{i}") for i in range(2_000) if stalls(i, 7)}
        assert {i["customer_ref"] for i in items} == expected
        assert len(items) == 140
        stats = receiver.stats()
        assert (stats["accepted"], stats["duplicates"], stats["unsigned"], stats["failed"]) == (
            140,
            0,
            0,
            0,
        )
        due = sum(int(client.zcard(p.key("due"))) for p in store.partitions(parse_spec(text)))
        assert due == 0
        client.close()
    finally:
        for w in workers:
            stop(w)
        receiver.stop()


def test_a_cluster_url_gets_the_cluster_client_and_a_plain_one_the_single_client() -> None:
    import redis

    plain = store.connect("redis://127.0.0.1:9/0", 0.5)
    assert type(plain) is redis.Redis
    assert store.CLUSTER_SCHEMES == ("redis+cluster://", "rediss+cluster://")
