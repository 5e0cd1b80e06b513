package org.fedmef.core.codec;

import java.util.List;
import java.util.Map;

/**
 * Writes JSON exactly as Python's {@code json.dumps} does with its defaults ({@code ", "} and
 * {@code ": "} separators, {@code ensure_ascii=True}), which is how flwr serializes the bodies
 * of RecordDict, ArrayRecord and Array objects. Byte-identical JSON gives ids identical to flwr's.
 */
final class PyJson {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private PyJson() {
    }

    /** {@code {"key": "value", ...}} in the map's order. */
    static String stringMap(Map<String, String> map) {
        StringBuilder out = new StringBuilder("{");
        boolean first = true;
        for (Map.Entry<String, String> e : map.entrySet()) {
            out.append(first ? "" : ", ");
            quote(out, e.getKey()).append(": ");
            quote(out, e.getValue());
            first = false;
        }
        return out.append('}').toString();
    }

    /** {@code [1, 2, 3]}. */
    static String numbers(long[] values) {
        StringBuilder out = new StringBuilder("[");
        for (int i = 0; i < values.length; i++) {
            out.append(i == 0 ? "" : ", ").append(values[i]);
        }
        return out.append(']').toString();
    }

    /** {@code [1, 2, 3]}. */
    static String numbers(List<Integer> values) {
        StringBuilder out = new StringBuilder("[");
        for (int i = 0; i < values.size(); i++) {
            out.append(i == 0 ? "" : ", ").append(values.get(i));
        }
        return out.append(']').toString();
    }

    /** A JSON string literal with Python's {@code ensure_ascii} escaping. */
    static String quote(String s) {
        return quote(new StringBuilder(), s).toString();
    }

    private static StringBuilder quote(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"':
                    out.append("\\\"");
                    break;
                case '\\':
                    out.append("\\\\");
                    break;
                case '\n':
                    out.append("\\n");
                    break;
                case '\r':
                    out.append("\\r");
                    break;
                case '\t':
                    out.append("\\t");
                    break;
                case '\b':
                    out.append("\\b");
                    break;
                case '\f':
                    out.append("\\f");
                    break;
                default:
                    if (c >= 0x20 && c <= 0x7e) {
                        out.append(c);
                    } else { // UTF-16 code units, as Python writes surrogate pairs
                        out.append("\\u").append(HEX[c >> 12 & 0xF]).append(HEX[c >> 8 & 0xF])
                                .append(HEX[c >> 4 & 0xF]).append(HEX[c & 0xF]);
                    }
            }
        }
        return out.append('"');
    }
}
