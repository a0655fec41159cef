# Defaults for the local services. Every value can be overridden from the environment;
# sourced by deploy/local/services and by the Makefile's helpers.
: "${STREAMREC_HOME:=$HOME/.cache/streamrec}"          # cache + data + logs, never in the repo
: "${STREAMREC_ARTIFACTS:=$STREAMREC_HOME/artifacts}"   # downloaded jars (kept across wipes)
: "${STREAMREC_RUN:=$STREAMREC_HOME/run}"               # pid files, logs, generated configs
: "${STREAMREC_DATA:=$STREAMREC_HOME/data}"             # service data (removed by `down --wipe`)

: "${KAFKA_VERSION:=4.2.2}"
: "${CASSANDRA_VERSION:=5.0.6}"
: "${KAFKA_CONNECTOR_VERSION:=5.0.0-2.2}"

: "${KAFKA_PORT:=9092}"
: "${KAFKA_CONTROLLER_PORT:=9093}"
: "${KAFKA_HEAP:=512m}"
: "${CASSANDRA_PORT:=9042}"
: "${CASSANDRA_STORAGE_PORT:=7000}"
: "${CASSANDRA_HEAP:=768m}"
: "${FLINK_REST_PORT:=8081}"
: "${FLINK_RPC_PORT:=6123}"
: "${FLINK_PROMETHEUS_PORTS:=9249-9259}"   # /metrics for Prometheus: the JobManager and each TaskManager take one
: "${FLINK_TASK_SLOTS:=4}"       # a job takes 2 per parallel instance (JobConfig.model_slot_group): parallelism 2 fits on one
: "${FLINK_TASKMANAGERS:=2}"     # jobs spread over both, so a lost one's tasks restart on the warm other (recovery time)
: "${FLINK_TM_MEMORY:=4g}"
: "${FLINK_JM_MEMORY:=1g}"

: "${KAFKA_TIMEOUT:=90}"       # seconds each service may take to come up
: "${CASSANDRA_TIMEOUT:=180}"
: "${FLINK_TIMEOUT:=90}"

# Cassandra must run on Java 17 (5.0 refuses newer); Kafka 4.x and Flink 2.2 run on it too.
if [ -z "${STREAMREC_JAVA:-}" ]; then
  for j in /usr/lib/jvm/java-17-openjdk-amd64/bin/java /usr/lib/jvm/java-17-openjdk/bin/java; do
    [ -x "$j" ] && STREAMREC_JAVA=$j && break
  done
  : "${STREAMREC_JAVA:=java}"
fi
export STREAMREC_HOME STREAMREC_ARTIFACTS STREAMREC_RUN STREAMREC_DATA STREAMREC_JAVA
export KAFKA_PORT CASSANDRA_PORT FLINK_REST_PORT
