"""Time-to-live for the Python operators' keyed state (pyflink; used by the Flink adapters).

The TTLs here only collect the state of idle keys (a user not seen for the dedupe horizon or
for ``user_state_ttl_ms``); nothing depends on an expired value being hidden. That matters
for speed: with PyFlink's default visibility (``NeverReturnExpired``) the Python worker turns
its state cache off, for every state of the operator, and each ``update`` becomes a
synchronous round trip to the JVM. ``ReturnExpiredIfNotCleanedUp`` keeps the cache
(``pyflink/fn_execution/state_impl.py``, ``enable_time_to_live``): in the profile of the job
(bench/e2e.py, py-spy) those round trips were 19 % of the Python worker's samples.
"""

from __future__ import annotations

from pyflink.common.time import Time
from pyflink.datastream.state import StateTtlConfig


def idle_state_ttl(ms: int) -> StateTtlConfig:
    # An explicit cleanup strategy: the default one is built with Duration.of_days, which in
    # thread mode (Python inside the TaskManager) starts a Py4J gateway JVM and hangs
    # (FLINK-40628). Incremental cleanup is what the heap backend does by default anyway.
    return (StateTtlConfig.new_builder(Time.milliseconds(ms))
            .set_state_visibility(StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp)
            .disable_cleanup_in_background()
            .cleanup_incrementally(10, False)
            .build())
