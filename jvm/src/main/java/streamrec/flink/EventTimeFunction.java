package streamrec.flink;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Set;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * The event time a raw Kafka record gives the job's watermark, computed in the Kafka source.
 *
 * <p>Returns {@code min(ts, recordTs)} for a record that the Python cleaner
 * ({@code operators/cleaning/cleaner.py}) accepts as an event or a heartbeat, and the epoch
 * (which moves no watermark) for every other record: a record the job rejects must not move
 * event time. The checks are the cleaner's, on a strict JSON parser that accepts exactly what
 * Python's {@code json.loads} accepts (no NaN/Infinity, no trailing data, no raw control
 * characters in strings, duplicate keys: the last wins). {@code tests/flink} checks the two
 * against each other on a hostile corpus.
 *
 * <p>SQL: {@code streamrec_event_time(payload, kafka_ts, maxBytes, maxDepth, maxIdLength,
 * minTsMs, maxFutureSkewMs)}.
 */
public class EventTimeFunction extends ScalarFunction {
    private static final Instant NO_EVENT_TIME = Instant.EPOCH;
    private static final Set<String> EVENT_TYPES = Set.of("view", "click", "add_to_cart", "purchase", "rating");

    public @DataTypeHint("TIMESTAMP_LTZ(3)") Instant eval(
            byte[] payload,
            @DataTypeHint("TIMESTAMP_LTZ(3)") Instant recordTs,
            long maxBytes, int maxDepth, int maxIdLength, long minTsMs, long maxFutureSkewMs) {
        if (payload == null || recordTs == null || payload.length > maxBytes) {
            return NO_EVENT_TIME;
        }
        long now = recordTs.toEpochMilli();
        Long time = eventTime(payload, now, maxDepth, maxIdLength, minTsMs, maxFutureSkewMs);
        return time == null ? NO_EVENT_TIME : Instant.ofEpochMilli(Math.min(time, now));
    }

    /** The record's ts (or heartbeat_ts) when the cleaner would accept it, else null. */
    static Long eventTime(byte[] payload, long now, int maxDepth, int maxIdLength, long minTsMs,
                          long maxFutureSkewMs) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(payload)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
        StrictJson.Obj doc;
        try {
            Object parsed = new StrictJson(text, maxDepth).parseDocument();
            if (!(parsed instanceof StrictJson.Obj)) {
                return null;
            }
            doc = (StrictJson.Obj) parsed;
        } catch (StrictJson.Invalid e) {
            return null;   // not JSON, or deeper than maxDepth: the cleaner rejects both
        }
        if (doc.has("heartbeat_ts") && !doc.has("event_id")) {
            return timestamp(doc.get("heartbeat_ts"), now, minTsMs, maxFutureSkewMs);
        }
        for (String field : new String[] {"event_id", "user_id", "item_id"}) {
            if (!validId(doc.get(field), maxIdLength)) {
                return null;
            }
        }
        Object type = doc.get("event_type");
        if (!(type instanceof String) || !EVENT_TYPES.contains(type)) {
            return null;
        }
        Long ts = timestamp(doc.get("ts"), now, minTsMs, maxFutureSkewMs);
        if (ts == null) {
            return null;
        }
        Object value = doc.get("value");
        if (value != null && value != StrictJson.NULL && !(value instanceof StrictJson.Num && ((StrictJson.Num) value).finite())) {
            return null;
        }
        Object context = doc.get("context");
        if (context != null && context != StrictJson.NULL && !(context instanceof StrictJson.Obj)) {
            return null;
        }
        return ts;
    }

    private static Long timestamp(Object node, long now, long minTsMs, long maxFutureSkewMs) {
        if (!(node instanceof StrictJson.Num) || !((StrictJson.Num) node).integral) {
            return null;
        }
        Long ts = ((StrictJson.Num) node).longValue();
        if (ts == null || ts < minTsMs || ts > now + maxFutureSkewMs) {
            return null;
        }
        return ts;
    }

    private static boolean validId(Object node, int maxIdLength) {
        if (!(node instanceof String)) {
            return false;
        }
        String id = (String) node;
        if (id.isEmpty() || id.codePointCount(0, id.length()) > maxIdLength) {
            return false;
        }
        for (int i = 0; i < id.length(); i++) {
            char c = id.charAt(i);
            if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) {
                return false;
            }
        }
        return true;
    }
}
