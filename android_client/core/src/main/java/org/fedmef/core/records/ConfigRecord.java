package org.fedmef.core.records;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;

/**
 * Flower's {@code ConfigRecord}: an ordered, immutable map from names to configuration values.
 *
 * <p>Values are {@link Long}, {@link Double}, {@link Boolean}, {@link String}, {@code byte[]}, or
 * a list of one of those (integers and floats given as {@code Integer}/{@code Float} are widened).
 * FedMef's {@code plan} is such a record.
 */
public final class ConfigRecord implements Record {
    private final Map<String, Object> values;

    private ConfigRecord(Map<String, Object> values) {
        this.values = Collections.unmodifiableMap(values);
    }

    /** A builder that keeps insertion order. */
    public static Builder builder() {
        return new Builder();
    }

    /** A record with these entries, in the map's iteration order. */
    public static ConfigRecord of(Map<String, ?> values) {
        Builder b = builder();
        for (Map.Entry<String, ?> e : values.entrySet()) {
            b.put(e.getKey(), e.getValue());
        }
        return b.build();
    }

    /** The value under {@code key} (byte arrays copied); throws when absent. */
    public Object get(String key) {
        return Values.copyOut(stored(key));
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
        return typed(key, Long.class);
    }

    /** A float value; an integer value is converted. */
    public double getDouble(String key) {
        Object v = stored(key);
        if (v instanceof Long) {
            return (Long) v;
        }
        return typed(key, Double.class);
    }

    /** A string value. */
    public String getString(String key) {
        return typed(key, String.class);
    }

    /** A boolean value. */
    public boolean getBoolean(String key) {
        return typed(key, Boolean.class);
    }

    /** A copy of a bytes value. */
    public byte[] getBytes(String key) {
        return typed(key, byte[].class).clone();
    }

    /** A list value (read-only). */
    public List<?> getList(String key) {
        return (List<?>) Values.copyOut(typed(key, List.class));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ConfigRecord && Values.mapsEqual(values, ((ConfigRecord) o).values);
    }

    @Override
    public int hashCode() {
        return Values.mapHash(values);
    }

    @Override
    public String toString() {
        return "ConfigRecord" + values.keySet();
    }

    private Object stored(String key) {
        Object v = values.get(key);
        if (v == null) {
            throw new NoSuchElementException("ConfigRecord has no key '" + key + "'");
        }
        return v;
    }

    private <T> T typed(String key, Class<T> type) {
        Object v = stored(key);
        if (!type.isInstance(v)) {
            throw new IllegalStateException("ConfigRecord '" + key + "' is " + v.getClass().getSimpleName()
                    + ", not " + type.getSimpleName());
        }
        return type.cast(v);
    }

    /** Collects entries in insertion order. */
    public static final class Builder {
        private final Map<String, Object> values = new LinkedHashMap<>();

        private Builder() {
        }

        /** Adds (or replaces, keeping its position) a value. */
        public Builder put(String key, Object value) {
            values.put(key, Values.normalize(key, value, true));
            return this;
        }

        /** The immutable record. */
        public ConfigRecord build() {
            return new ConfigRecord(new LinkedHashMap<>(values));
        }
    }
}
