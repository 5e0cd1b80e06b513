package org.fedmef.core.records;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;

/**
 * Flower's {@code MetricRecord}: an ordered, immutable map from names to numbers.
 *
 * <p>Values are {@link Long} or {@link Double}, or a list of one of them; FedMef's reply
 * {@code metrics} (e.g. {@code num-examples}, {@code train-loss}) is such a record.
 */
public final class MetricRecord implements Record {
    private final Map<String, Object> values;

    private MetricRecord(Map<String, Object> values) {
        this.values = Collections.unmodifiableMap(values);
    }

    /** A builder that keeps insertion order. */
    public static Builder builder() {
        return new Builder();
    }

    /** A record with these entries, in the map's iteration order. */
    public static MetricRecord of(Map<String, ?> values) {
        Builder b = builder();
        for (Map.Entry<String, ?> e : values.entrySet()) {
            b.put(e.getKey(), e.getValue());
        }
        return b.build();
    }

    /** The value under {@code key}: a Long, a Double or a read-only list; throws when absent. */
    public Object get(String key) {
        Object v = values.get(key);
        if (v == null) {
            throw new NoSuchElementException("MetricRecord has no key '" + key + "'");
        }
        return v;
    }

    /** Whether {@code key} is present. */
    public boolean has(String key) {
        return values.containsKey(key);
    }

    /** The keys, in order. */
    public Set<String> keys() {
        return values.keySet();
    }

    /** Number of entries. */
    public int size() {
        return values.size();
    }

    /** An integer value. */
    public long getLong(String key) {
        Object v = get(key);
        if (!(v instanceof Long)) {
            throw new IllegalStateException("MetricRecord '" + key + "' is not an integer");
        }
        return (Long) v;
    }

    /** A numeric value as double (integers converted). */
    public double getDouble(String key) {
        Object v = get(key);
        if (!(v instanceof Number)) {
            throw new IllegalStateException("MetricRecord '" + key + "' is a list, not a number");
        }
        return ((Number) v).doubleValue();
    }

    /** A list value. */
    public List<?> getList(String key) {
        Object v = get(key);
        if (!(v instanceof List)) {
            throw new IllegalStateException("MetricRecord '" + key + "' is not a list");
        }
        return (List<?>) v;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof MetricRecord && values.equals(((MetricRecord) o).values);
    }

    @Override
    public int hashCode() {
        return values.hashCode();
    }

    @Override
    public String toString() {
        return "MetricRecord" + values;
    }

    /** Collects entries in insertion order. */
    public static final class Builder {
        private final Map<String, Object> values = new LinkedHashMap<>();

        private Builder() {
        }

        /** Adds (or replaces, keeping its position) a value. */
        public Builder put(String key, Object value) {
            values.put(key, Values.normalize(key, value, false));
            return this;
        }

        /** The immutable record. */
        public MetricRecord build() {
            return new MetricRecord(new LinkedHashMap<>(values));
        }
    }
}
