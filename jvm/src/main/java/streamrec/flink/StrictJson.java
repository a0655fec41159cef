package streamrec.flink;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.HashMap;
import java.util.Map;

/**
 * A JSON parser that accepts what Python's {@code json.loads} accepts and nothing more
 * (RFC 8259; whitespace is space, tab, CR, LF; lone surrogate escapes are allowed, as Python
 * allows them), failing once nesting passes {@code maxDepth}. Objects keep only their
 * top-level members' values that the event-time checks need to look at: strings, numbers,
 * null, or a marker for objects and arrays.
 */
final class StrictJson {
    static final Object NULL = new Object();
    static final Object ARRAY = new Object();

    static final class Invalid extends Exception {
        Invalid() {
            super(null, null, false, false);
        }
    }

    /** A JSON number: integral when written without fraction or exponent. */
    static final class Num {
        final String text;
        final boolean integral;

        Num(String text, boolean integral) {
            this.text = text;
            this.integral = integral;
        }

        Long longValue() {
            try {
                BigInteger v = new BigInteger(text);
                return v.bitLength() < 64 ? v.longValue() : null;
            } catch (NumberFormatException e) {
                return null;
            }
        }

        boolean finite() {
            // Python parses a non-integral number as a float (too large a magnitude is inf) and
            // fails to turn an integer beyond the float range into one: both are rejected.
            return Double.isFinite(new BigDecimal(text).doubleValue());
        }
    }

    static final class Obj {
        final Map<String, Object> members = new HashMap<>();

        boolean has(String key) {
            return members.containsKey(key);
        }

        Object get(String key) {
            return members.get(key);
        }
    }

    private final String s;
    private final int maxDepth;
    private int pos;

    StrictJson(String s, int maxDepth) {
        this.s = s;
        this.maxDepth = maxDepth;
    }

    Object parseDocument() throws Invalid {
        skipWhitespace();
        Object value = value(1);
        skipWhitespace();
        if (pos != s.length()) {
            throw new Invalid();
        }
        return value;
    }

    private Object value(int depth) throws Invalid {
        if (pos >= s.length()) {
            throw new Invalid();
        }
        char c = s.charAt(pos);
        switch (c) {
            case '{':
                return object(depth);
            case '[':
                return array(depth);
            case '"':
                return string();
            case 't':
                return literal("true", Boolean.TRUE);
            case 'f':
                return literal("false", Boolean.FALSE);
            case 'n':
                return literal("null", NULL);
            default:
                if (c == '-' || (c >= '0' && c <= '9')) {
                    return number();
                }
                throw new Invalid();
        }
    }

    private Object literal(String word, Object result) throws Invalid {
        if (!s.startsWith(word, pos)) {
            throw new Invalid();
        }
        pos += word.length();
        return result;
    }

    private Obj object(int depth) throws Invalid {
        Obj obj = new Obj();
        if (open(depth, '}')) {
            return obj;
        }
        do {
            skipWhitespace();
            if (peek() != '"') {
                throw new Invalid();
            }
            String key = string();
            skipWhitespace();
            if (peek() != ':') {
                throw new Invalid();
            }
            pos++;
            skipWhitespace();
            obj.members.put(key, value(depth + 1));   // a later duplicate wins, as in Python
        } while (!next('}'));
        return obj;
    }

    private Object array(int depth) throws Invalid {
        if (open(depth, ']')) {
            return ARRAY;
        }
        do {
            skipWhitespace();
            value(depth + 1);
        } while (!next(']'));
        return ARRAY;
    }

    /** Past the opening bracket; true if the container is empty (and closed). */
    private boolean open(int depth, char close) throws Invalid {
        if (depth > maxDepth) {
            throw new Invalid();
        }
        pos++;
        skipWhitespace();
        if (peek() == close) {
            pos++;
            return true;
        }
        return false;
    }

    /** After a member: true at the closing bracket, false at a comma, else invalid. */
    private boolean next(char close) throws Invalid {
        skipWhitespace();
        char c = peek();
        pos++;
        if (c == close) {
            return true;
        }
        if (c != ',') {
            throw new Invalid();
        }
        return false;
    }

    private String string() throws Invalid {
        pos++;   // opening quote
        StringBuilder out = new StringBuilder();
        while (true) {
            if (pos >= s.length()) {
                throw new Invalid();
            }
            char c = s.charAt(pos++);
            if (c == '"') {
                return out.toString();
            }
            if (c < 0x20) {
                throw new Invalid();   // Python's strict mode refuses raw control characters
            }
            if (c != '\\') {
                out.append(c);
                continue;
            }
            if (pos >= s.length()) {
                throw new Invalid();
            }
            char e = s.charAt(pos++);
            switch (e) {
                case '"': out.append('"'); break;
                case '\\': out.append('\\'); break;
                case '/': out.append('/'); break;
                case 'b': out.append('\b'); break;
                case 'f': out.append('\f'); break;
                case 'n': out.append('\n'); break;
                case 'r': out.append('\r'); break;
                case 't': out.append('\t'); break;
                case 'u':
                    if (pos + 4 > s.length()) {
                        throw new Invalid();
                    }
                    int code = 0;
                    for (int i = 0; i < 4; i++) {
                        int d = Character.digit(s.charAt(pos++), 16);
                        if (d < 0) {
                            throw new Invalid();
                        }
                        code = code * 16 + d;
                    }
                    out.append((char) code);
                    break;
                default:
                    throw new Invalid();
            }
        }
    }

    private Num number() throws Invalid {
        int start = pos;
        if (peek() == '-') {
            pos++;
        }
        if (peek() == '0') {
            pos++;
        } else if (isDigit(peek())) {
            while (isDigit(peek())) {
                pos++;
            }
        } else {
            throw new Invalid();
        }
        boolean integral = true;
        if (peek() == '.') {
            pos++;
            digits();
            integral = false;
        }
        if (peek() == 'e' || peek() == 'E') {
            pos++;
            if (peek() == '+' || peek() == '-') {
                pos++;
            }
            digits();
            integral = false;
        }
        return new Num(s.substring(start, pos), integral);
    }

    /** One or more digits. */
    private void digits() throws Invalid {
        if (!isDigit(peek())) {
            throw new Invalid();
        }
        while (isDigit(peek())) {
            pos++;
        }
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    private char peek() {
        return pos < s.length() ? s.charAt(pos) : '\0';
    }

    private void skipWhitespace() {
        while (pos < s.length()) {
            char c = s.charAt(pos);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            pos++;
        }
    }
}
