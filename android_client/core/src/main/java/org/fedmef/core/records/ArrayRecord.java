package org.fedmef.core.records;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;

/**
 * Flower's {@code ArrayRecord}: an ordered, immutable map from names to arrays.
 *
 * <p>Order matters on the wire (Flower hashes the JSON of its entries in insertion order), so
 * entries keep the order they were put in.
 */
public final class ArrayRecord implements Record {
    private final Map<String, NdArray> arrays;

    private ArrayRecord(Map<String, NdArray> arrays) {
        this.arrays = Collections.unmodifiableMap(new LinkedHashMap<>(arrays));
    }

    /** A record with these entries, in the map's iteration order. */
    public static ArrayRecord of(Map<String, NdArray> arrays) {
        for (Map.Entry<String, NdArray> e : arrays.entrySet()) {
            checkEntry(e.getKey(), e.getValue());
        }
        return new ArrayRecord(arrays);
    }

    /** A builder that keeps insertion order. */
    public static Builder builder() {
        return new Builder();
    }

    /** The array under {@code key}; throws {@link NoSuchElementException} when absent. */
    public NdArray get(String key) {
        NdArray a = arrays.get(key);
        if (a == null) {
            throw new NoSuchElementException("ArrayRecord has no array '" + key + "'");
        }
        return a;
    }

    /** Whether an array is stored under {@code key}. */
    public boolean has(String key) {
        return arrays.containsKey(key);
    }

    /** The keys, in order. */
    public Set<String> keys() {
        return arrays.keySet();
    }

    /** A read-only ordered view of all entries. */
    public Map<String, NdArray> asMap() {
        return arrays;
    }

    /** Number of arrays. */
    public int size() {
        return arrays.size();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ArrayRecord && arrays.equals(((ArrayRecord) o).arrays);
    }

    @Override
    public int hashCode() {
        return arrays.hashCode();
    }

    @Override
    public String toString() {
        return "ArrayRecord" + arrays;
    }

    private static void checkEntry(String key, NdArray value) {
        if (key == null || value == null) {
            throw new IllegalArgumentException("ArrayRecord keys and arrays must not be null");
        }
    }

    /** Collects arrays in insertion order. */
    public static final class Builder {
        private final Map<String, NdArray> arrays = new LinkedHashMap<>();

        private Builder() {
        }

        /** Adds (or replaces, keeping its position) an array. */
        public Builder put(String key, NdArray array) {
            checkEntry(key, array);
            arrays.put(key, array);
            return this;
        }

        /** The immutable record. */
        public ArrayRecord build() {
            return new ArrayRecord(arrays);
        }
    }
}
