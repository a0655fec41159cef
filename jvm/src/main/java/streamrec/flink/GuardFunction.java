package streamrec.flink;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * The cleaning stage's per-user guard, in the JVM: the same decisions as the Python
 * {@code operators/cleaning/guard.py} (EventGuard), which the offline tools run and
 * tests/flink/test_guard.py holds this class to, event for event.
 *
 * <p>Keyed by user ({@link UserKey}); rows are the job's CLEAN_ROW (event_id, user_id, item_id,
 * event_type, value, ts, partition, offset, ingest_ts, raw). A duplicate (an event_id seen within
 * {@code dedupeTtlMs} of event time) is counted and dropped; an event beyond
 * {@code rateLimit} accepted events per {@code rateWindowMs} of event time goes to
 * {@link #REJECTED} as (reason, raw, partition, offset), which the job turns into a dead
 * letter; the rest is forwarded unchanged. Every decision uses event time only, so a replay
 * decides the same way.
 *
 * <p>Why in the JVM: a keyed Python operator pays a round trip to the JVM's state for every
 * event (README "Benchmarks"); here the state is a heap object and the check a few map
 * operations.
 */
public class GuardFunction extends KeyedProcessFunction<String, Row, Row> {
    private static final long serialVersionUID = 1L;

    public static final OutputTag<Row> REJECTED = new OutputTag<>("guard-rejected",
            Types.ROW_NAMED(new String[] {"reason", "raw", "partition", "offset"},
                    Types.STRING, Types.STRING, Types.INT, Types.LONG));

    /** For Python (Py4J reads methods, not fields). */
    public static OutputTag<Row> rejected() {
        return REJECTED;
    }

    private static final int TS = 5;
    private static final int EVENT_ID = 0;
    private static final int PARTITION = 6;
    private static final int OFFSET = 7;
    private static final int RAW = 10;    // after the event columns (operators/features/sql.py EVENT_COLUMNS)

    private final long dedupeTtlMs;
    private final int maxDedupeIds;
    private final int rateLimit;
    private final long rateWindowMs;

    private transient ValueState<UserGuardState> state;
    private transient Counter forwarded;
    private transient Counter duplicates;
    private transient Counter rateLimited;

    public GuardFunction(long dedupeTtlMs, int maxDedupeIds, int rateLimit, long rateWindowMs) {
        this.dedupeTtlMs = dedupeTtlMs;
        this.maxDedupeIds = maxDedupeIds;
        this.rateLimit = rateLimit;
        this.rateWindowMs = rateWindowMs;
    }

    /** One user's guard state: event ids by insertion order, accepted timestamps sorted. */
    public static final class UserGuardState {
        public LinkedHashMap<String, Long> seen = new LinkedHashMap<>();
        public ArrayList<Long> accepted = new ArrayList<>();
        public long maxTs = Long.MIN_VALUE;
    }

    @Override
    public void open(OpenContext context) {
        ValueStateDescriptor<UserGuardState> descriptor =
                new ValueStateDescriptor<>("guard", TypeInformation.of(UserGuardState.class));
        // A user idle (in processing time) for longer than the dedupe horizon needs no state.
        descriptor.enableTimeToLive(StateTtlConfig.newBuilder(Duration.ofMillis(Math.max(dedupeTtlMs, rateWindowMs)))
                .setUpdateType(StateTtlConfig.UpdateType.OnCreateAndWrite)
                .setStateVisibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                .build());
        state = getRuntimeContext().getState(descriptor);
        MetricGroup group = getRuntimeContext().getMetricGroup().addGroup("guard");
        forwarded = group.counter("forwarded");
        duplicates = group.counter("duplicates");
        rateLimited = group.addGroup("rejected").addGroup("reason", "rate_limited").counter("count");
    }

    @Override
    public void processElement(Row row, Context ctx, Collector<Row> out) throws Exception {
        UserGuardState user = state.value();
        if (user == null) {
            user = new UserGuardState();
        }
        String verdict = check(user, (String) row.getField(EVENT_ID), (Long) row.getField(TS));
        state.update(user);
        if (verdict == null) {
            forwarded.inc();
            out.collect(row);
        } else if (verdict.equals("duplicate")) {
            duplicates.inc();
        } else {
            rateLimited.inc();
            ctx.output(REJECTED, Row.of(verdict, row.getField(RAW), row.getField(PARTITION), row.getField(OFFSET)));
        }
    }

    /** null to forward, else "duplicate" or "rate_limited"; updates {@code user}. */
    String check(UserGuardState user, String eventId, long ts) {
        user.maxTs = Math.max(user.maxTs, ts);
        long horizon = user.maxTs - dedupeTtlMs;
        Long seenAt = user.seen.get(eventId);
        if (seenAt != null && seenAt >= horizon) {
            return "duplicate";
        }
        // Remembered whatever happens next, so a retried rejected event is a duplicate, not a
        // second dead letter.
        user.seen.remove(eventId);
        user.seen.put(eventId, ts);
        pruneIds(user.seen, horizon);
        ArrayList<Long> acc = user.accepted;
        if (bisectRight(acc, ts) - bisectRight(acc, ts - rateWindowMs) >= rateLimit) {
            return "rate_limited";
        }
        acc.add(bisectRight(acc, ts), ts);
        acc.subList(0, bisectRight(acc, user.maxTs - rateWindowMs)).clear();
        return null;
    }

    private void pruneIds(LinkedHashMap<String, Long> seen, long horizon) {
        Iterator<Map.Entry<String, Long>> it = seen.entrySet().iterator();
        while (seen.size() > maxDedupeIds) {
            it.next();
            it.remove();
        }
        // amortised: expire old ids now and then, not on every event
        if (seen.size() > 64 && seen.values().iterator().next() < horizon) {
            seen.values().removeIf(t -> t < horizon);
        }
    }

    /** Python's bisect.bisect_right on a sorted list: the number of elements <= x. */
    private static int bisectRight(ArrayList<Long> sorted, long x) {
        int lo = 0;
        int hi = sorted.size();
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (sorted.get(mid) <= x) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }
}
