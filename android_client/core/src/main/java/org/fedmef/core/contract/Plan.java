package org.fedmef.core.contract;

import java.util.LinkedHashMap;
import java.util.Map;
import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.NdArray;

/**
 * The round's {@code plan} config record (protocol §3): the few scalars the client itself reads
 * (batch size, epochs, seed, growth counts, the manifest) and, for graph inputs of role
 * {@code plan}, the value of the key of the same name cast to the input's dtype.
 */
public final class Plan {
    public static final String MANIFEST = "manifest";
    public static final String GROW_PREFIX = "grow/";

    private final ConfigRecord record;

    public Plan(ConfigRecord record) {
        this.record = record;
    }

    /** The manifest JSON; a ContractException when the plan has none (eager {@code torch} backend). */
    public String manifestJson() {
        if (!record.has(MANIFEST)) {
            throw new ContractException("plan has no 'manifest': this client runs exported graphs only "
                    + "(the run's backend must not be 'torch')");
        }
        Object value = record.get(MANIFEST);
        if (!(value instanceof String)) {
            throw new ContractException("plan 'manifest' must be a string");
        }
        return (String) value;
    }

    public int batchSize() {
        return positiveInt("batch-size");
    }

    public int epochs() {
        return Math.toIntExact(integer("epochs"));
    }

    public long seed() {
        return integer("seed");
    }

    /** {@code grow/<layer>} counts by layer, in plan order (empty outside adjustment rounds). */
    public Map<String, Integer> growCounts() {
        Map<String, Integer> out = new LinkedHashMap<>();
        for (String key : record.keys()) {
            if (key.startsWith(GROW_PREFIX)) {
                long count = integer(key);
                if (count < 0 || count > Integer.MAX_VALUE) {
                    throw new ContractException("plan '" + key + "' must be a count >= 0, got " + count);
                }
                out.put(key.substring(GROW_PREFIX.length()), (int) count);
            }
        }
        return out;
    }

    /** The value of a graph input of role {@code plan}: the plan key of the same name, cast. */
    public NdArray input(Manifest.Tensor tensor) {
        return Scalars.of(tensor, number(tensor.name()));
    }

    private int positiveInt(String key) {
        long value = integer(key);
        if (value < 1 || value > Integer.MAX_VALUE) {
            throw new ContractException("plan '" + key + "' must be a positive int, got " + value);
        }
        return (int) value;
    }

    private long integer(String key) {
        Number value = number(key);
        if (value instanceof Long) {
            return (Long) value;
        }
        double d = value.doubleValue();
        if (d != Math.rint(d) || Math.abs(d) > 0x1p62) {
            throw new ContractException("plan '" + key + "' must be an integer, got " + value);
        }
        return (long) d;
    }

    private Number number(String key) {
        if (!record.has(key)) {
            throw new ContractException("plan has no '" + key + "'");
        }
        Object value = record.get(key);
        if (value instanceof Boolean) {
            return ((Boolean) value) ? 1L : 0L;
        }
        if (!(value instanceof Number)) {
            throw new ContractException("plan '" + key + "' must be a number, got " + value.getClass().getSimpleName());
        }
        return (Number) value;
    }
}
