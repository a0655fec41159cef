package streamrec.flink;

import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.types.Row;

/** The cleaning stage's key: a CLEAN_ROW's user_id (operators/rows.py). */
public final class UserKey implements KeySelector<Row, String> {
    private static final long serialVersionUID = 1L;

    @Override
    public String getKey(Row row) {
        return (String) row.getField(1);
    }
}
