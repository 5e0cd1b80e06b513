package org.fedmef.core.contract;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import org.fedmef.core.records.NdArray;

/**
 * The model state as graph inputs (roles values, weight, positions, mask, marked, param) plus
 * each layer's active positions from its mask, which unpacking needs. Immutable: {@link #with}
 * returns a new state with some tensors replaced (a step's {@code update} outputs).
 */
public final class PackedState {
    private final Map<String, NdArray> tensors;
    private final Map<String, int[]> positions;

    PackedState(Map<String, NdArray> tensors, Map<String, int[]> positions) {
        this.tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
        this.positions = Collections.unmodifiableMap(new LinkedHashMap<>(positions));
    }

    /** The graph inputs by tensor name. */
    public Map<String, NdArray> tensors() {
        return tensors;
    }

    /** The tensor {@code name}, or null when the state has none. */
    public NdArray get(String name) {
        return tensors.get(name);
    }

    /** The ascending active flat indices of {@code layer} (from {@code m/<layer>}). */
    public int[] positions(String layer) {
        int[] p = positions.get(layer);
        if (p == null) {
            throw new ContractException("state has no mask for layer '" + layer + "'");
        }
        return p.clone();
    }

    /** This state with the given tensors replaced. */
    public PackedState with(Map<String, NdArray> replacements) {
        Map<String, NdArray> next = new LinkedHashMap<>(tensors);
        for (Map.Entry<String, NdArray> e : replacements.entrySet()) {
            if (!next.containsKey(e.getKey())) {
                throw new ContractException("state has no tensor '" + e.getKey() + "' to replace");
            }
            next.put(e.getKey(), e.getValue());
        }
        return new PackedState(next, positions);
    }
}
