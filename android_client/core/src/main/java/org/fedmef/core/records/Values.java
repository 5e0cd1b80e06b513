package org.fedmef.core.records;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * Checks and normalises the scalar values of config and metric records, the way Flower types them.
 *
 * <p>Integers become {@link Long} and floats {@link Double} (Flower's {@code sint64} and
 * {@code double}); config records also hold {@link Boolean}, {@link String} and {@code byte[]}.
 * A list holds one of those types only. Byte arrays are copied in and out so records stay
 * immutable, and compared by content.
 */
final class Values {
    private Values() {
    }

    /** The stored form of {@code value}; throws when a record of this kind cannot hold it. */
    static Object normalize(String key, Object value, boolean config) {
        if (key == null) {
            throw new IllegalArgumentException("record keys must not be null");
        }
        if (value instanceof List) {
            List<?> list = (List<?>) value;
            List<Object> out = new ArrayList<>(list.size());
            Class<?> first = null;
            for (Object element : list) {
                Object v = scalar(key, element, config);
                if (first != null && v.getClass() != first) {
                    throw new IllegalArgumentException("list '" + key + "' mixes " + first.getSimpleName()
                            + " and " + v.getClass().getSimpleName());
                }
                first = v.getClass();
                out.add(v);
            }
            return Collections.unmodifiableList(out);
        }
        return scalar(key, value, config);
    }

    private static Object scalar(String key, Object v, boolean config) {
        if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) {
            return ((Number) v).longValue();
        }
        if (v instanceof Double || v instanceof Float) {
            return ((Number) v).doubleValue();
        }
        if (config && (v instanceof Boolean || v instanceof String)) {
            return v;
        }
        if (config && v instanceof byte[]) {
            return ((byte[]) v).clone();
        }
        String type = v == null ? "null" : v.getClass().getSimpleName();
        throw new IllegalArgumentException((config ? "ConfigRecord" : "MetricRecord") + " cannot hold " + type
                + " (key '" + key + "')");
    }

    /** A copy safe to hand out (byte arrays copied; everything else is immutable). */
    static Object copyOut(Object stored) {
        if (stored instanceof byte[]) {
            return ((byte[]) stored).clone();
        }
        if (stored instanceof List && !((List<?>) stored).isEmpty() && ((List<?>) stored).get(0) instanceof byte[]) {
            List<Object> out = new ArrayList<>();
            for (Object b : (List<?>) stored) {
                out.add(((byte[]) b).clone());
            }
            return Collections.unmodifiableList(out);
        }
        return stored;
    }

    static boolean mapsEqual(Map<String, Object> a, Map<String, Object> b) {
        if (!a.keySet().equals(b.keySet())) {
            return false;
        }
        for (Map.Entry<String, Object> e : a.entrySet()) {
            if (!Arrays.deepEquals(new Object[] {flatten(e.getValue())}, new Object[] {flatten(b.get(e.getKey()))})) {
                return false;
            }
        }
        return true;
    }

    static int mapHash(Map<String, Object> map) {
        int h = 0;
        for (Map.Entry<String, Object> e : map.entrySet()) {
            h += e.getKey().hashCode() ^ Arrays.deepHashCode(new Object[] {flatten(e.getValue())});
        }
        return h;
    }

    private static Object flatten(Object v) {
        return v instanceof List ? ((List<?>) v).toArray() : v;
    }
}
