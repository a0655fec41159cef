from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.harness import BOOTSTRAP, CASSANDRA_PORT, FLINK_REST, Pipeline, drop_keyspace, rest


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session", autouse=True)
def services() -> None:
    """The tests need the real services; tests/run starts them. Fail loudly, never skip."""
    missing = [name for name, port in (("kafka", int(BOOTSTRAP.rsplit(":", 1)[1])),
                                       ("cassandra", CASSANDRA_PORT)) if not _port_open(port)]
    try:
        rest("/overview")
    except OSError:
        missing.append(f"flink ({FLINK_REST})")
    if missing:
        pytest.fail(f"local services not running: {', '.join(missing)}; start them with "
                    "deploy/local/services up", pytrace=False)


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    p = Pipeline()
    p.create_topics()
    yield p
    try:
        p.check_nothing_dropped_late()
    finally:
        p.cancel_all()
        drop_keyspace(p.name)


@pytest.fixture
def new_pipeline() -> Iterator[Callable[..., Pipeline]]:
    """Make pipelines (``new_pipeline(snapshot_every=.., partitions=..)``); all are cancelled and
    their keyspaces dropped afterwards."""
    made: list[Pipeline] = []

    def make(**kwargs: Any) -> Pipeline:
        p = Pipeline(**kwargs)
        p.create_topics()
        made.append(p)
        return p

    yield make
    try:
        for p in made:
            p.check_nothing_dropped_late()
    finally:
        for p in made:
            p.cancel_all()
            drop_keyspace(p.name)


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Print a result line past pytest's capture (failure tests report their recovery times)."""
    def emit(line: str) -> None:
        with capsys.disabled():
            print(f"\n{line.strip()}", flush=True)
    return emit
