package org.fedmef.core.records;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;

/**
 * Flower's {@code RecordDict}: the content of a message, an ordered, immutable map from names to
 * records. FedMef instructions carry {@code state}, {@code plan} and {@code artifacts}; replies
 * carry {@code update} and {@code metrics} (see docs/protocol.md).
 */
public final class RecordDict {
    private static final RecordDict EMPTY = new RecordDict(new LinkedHashMap<String, Record>());
    private final Map<String, Record> records;

    private RecordDict(Map<String, Record> records) {
        this.records = Collections.unmodifiableMap(records);
    }

    /** A dict without records. */
    public static RecordDict empty() {
        return EMPTY;
    }

    /** A builder that keeps insertion order. */
    public static Builder builder() {
        return new Builder();
    }

    /** The record named {@code name}; throws {@link NoSuchElementException} when absent. */
    public Record get(String name) {
        Record r = records.get(name);
        if (r == null) {
            throw new NoSuchElementException("RecordDict has no record '" + name + "' (has " + records.keySet() + ")");
        }
        return r;
    }

    /** Whether a record named {@code name} is present. */
    public boolean has(String name) {
        return records.containsKey(name);
    }

    /** The record {@code name}, which must be an ArrayRecord. */
    public ArrayRecord arrays(String name) {
        return typed(name, ArrayRecord.class);
    }

    /** The record {@code name}, which must be a ConfigRecord. */
    public ConfigRecord config(String name) {
        return typed(name, ConfigRecord.class);
    }

    /** The record {@code name}, which must be a MetricRecord. */
    public MetricRecord metrics(String name) {
        return typed(name, MetricRecord.class);
    }

    /** The record names, in order. */
    public Set<String> names() {
        return records.keySet();
    }

    /** A read-only ordered view of all records. */
    public Map<String, Record> asMap() {
        return records;
    }

    /** Number of records. */
    public int size() {
        return records.size();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RecordDict && records.equals(((RecordDict) o).records);
    }

    @Override
    public int hashCode() {
        return records.hashCode();
    }

    @Override
    public String toString() {
        return "RecordDict" + records;
    }

    private <T extends Record> T typed(String name, Class<T> type) {
        Record r = get(name);
        if (!type.isInstance(r)) {
            throw new IllegalStateException("record '" + name + "' is a " + r.getClass().getSimpleName()
                    + ", not a " + type.getSimpleName());
        }
        return type.cast(r);
    }

    /** Collects records in insertion order. */
    public static final class Builder {
        private final Map<String, Record> records = new LinkedHashMap<>();

        private Builder() {
        }

        /** Adds (or replaces, keeping its position) a record. */
        public Builder put(String name, Record record) {
            if (name == null || record == null) {
                throw new IllegalArgumentException("record names and records must not be null");
            }
            records.put(name, record);
            return this;
        }

        /** The immutable dict. */
        public RecordDict build() {
            return new RecordDict(new LinkedHashMap<>(records));
        }
    }
}
