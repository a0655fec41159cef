# The secured local stack (`services up --secure`, `make demo-secure`, tests/integration/
# test_secure.py): TLS and authentication on Kafka, Cassandra and Flink, beside the plain stack,
# in its own folders and on its own ports. Source this before env.sh (whose defaults yield to
# it); its secrets then live in $STREAMREC_RUN/secure.
: "${STREAMREC_HOME:=$HOME/.cache/streamrec}"
export STREAMREC_SECURE=1
export STREAMREC_RUN=$STREAMREC_HOME/run-secure STREAMREC_DATA=$STREAMREC_HOME/data-secure
export KAFKA_PORT=9192 KAFKA_CONTROLLER_PORT=9193 CASSANDRA_PORT=9142 CASSANDRA_STORAGE_PORT=7100
export FLINK_REST_PORT=8181 FLINK_RPC_PORT=6223 FLINK_TASKMANAGERS=1 FLINK_TM_MEMORY=4g
export FLINK_PROMETHEUS_PORTS=9260-9269
