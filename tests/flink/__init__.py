"""Tests on a local Flink mini-cluster in the test process (no services)."""

from __future__ import annotations

import sys

from pyflink.common import Configuration
from pyflink.datastream import StreamExecutionEnvironment


def local_stream_env(settings: dict[str, str] | None = None) -> StreamExecutionEnvironment:
    """A parallelism-1 DataStream environment whose Python workers run this interpreter."""
    conf = Configuration()
    conf.set_string("python.executable", sys.executable)
    for key, value in (settings or {}).items():
        conf.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(1)
    return env
