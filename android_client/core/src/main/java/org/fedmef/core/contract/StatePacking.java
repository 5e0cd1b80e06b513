package org.fedmef.core.contract;

import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.DType;
import org.fedmef.core.records.NdArray;

/**
 * Wire state ↔ graph inputs (protocol §6, "Input roles" and "Unpacking"). {@link #pack} builds
 * every tensor of a state role (values, weight, positions, mask, marked, param) from the
 * instruction's {@code v/ m/ d/ x/} arrays, each checked against the manifest's dtype and shape;
 * {@link #apply} takes a step's {@code update} outputs; {@link #unpack} gives the reply's
 * {@code v/<layer>} and {@code d/<param>}.
 */
public final class StatePacking {
    private final Manifest manifest;

    public StatePacking(Manifest manifest) {
        this.manifest = manifest;
    }

    /** Every state-role tensor of the manifest, from the wire arrays of an instruction's {@code state}. */
    public PackedState pack(ArrayRecord wire) {
        Map<String, int[]> positions = new LinkedHashMap<>();
        for (Manifest.Tensor t : manifest.tensors().values()) {
            if (t.role().isPerLayer() && !positions.containsKey(t.layer())) {
                positions.put(t.layer(), LayerArrays.positions(wire, t));
            }
        }
        Map<String, NdArray> tensors = new LinkedHashMap<>();
        for (Manifest.Tensor t : manifest.tensors().values()) {
            NdArray value = build(t, wire, positions);
            if (value != null) {
                tensors.put(t.name(), TensorCheck.matches(t, value));
            }
        }
        return new PackedState(tensors, positions);
    }

    /** {@code state} with every {@code update} output of {@code graph} written to the input it replaces. */
    public PackedState apply(String graph, PackedState state, Map<String, NdArray> outputs) {
        Map<String, NdArray> replacements = new LinkedHashMap<>();
        for (Manifest.Output o : manifest.graph(graph).outputs()) {
            if (o.role() == OutputRole.UPDATE) {
                NdArray value = outputs.get(o.name());
                if (value == null) {
                    throw new ContractException("graph '" + graph + "' returned no output '" + o.name() + "'");
                }
                Manifest.Tensor input = manifest.tensor(o.of());
                replacements.put(input.name(), TensorCheck.matches("output '" + o.name() + "' (the new '" + input.name()
                        + "')", input.dtype(), input.shape(), value));
            }
        }
        return state.with(replacements);
    }

    /** The reply's {@code v/<layer>} and {@code d/<param>} arrays for the trainable inputs of {@code graph}. */
    public LinkedHashMap<String, NdArray> unpack(String graph, PackedState state) {
        LinkedHashMap<String, NdArray> out = new LinkedHashMap<>();
        Set<String> seen = new HashSet<>();
        for (Manifest.Tensor t : manifest.inputs(graph)) {
            NdArray value = state.get(t.name());
            if (t.role() == InputRole.VALUES && seen.add(t.layer())) {
                out.put(LayerArrays.VALUES + t.layer(), NdArray.ofFloats(value.toFloats()));
            } else if (t.role() == InputRole.WEIGHT && seen.add(t.layer())) {
                out.put(LayerArrays.VALUES + t.layer(), LayerArrays.gather(value.toFloats(), state.positions(t.layer())));
            } else if (t.role() == InputRole.PARAM) {
                out.put(LayerArrays.DENSE + t.name(), value);
            }
        }
        return out;
    }

    private NdArray build(Manifest.Tensor t, ArrayRecord wire, Map<String, int[]> positions) {
        int[] active = t.role().isPerLayer() ? positions.get(t.layer()) : null;
        switch (t.role()) {
            case VALUES:
                return LayerArrays.values(wire, t, active.length);
            case WEIGHT:
                return LayerArrays.scatter(t, LayerArrays.values(wire, t, active.length).toFloats(), active);
            case POSITIONS:
                return LayerArrays.cast(t, active);
            case MASK:
                return LayerArrays.mask(t, active);
            case MARKED:
                return LayerArrays.marked(wire, t, trainableOf(t.layer()), active);
            case PARAM:
                return LayerArrays.wire(wire, LayerArrays.DENSE + t.name(), t, DType.FLOAT32);
            default:
                return null; // data, plan and counter inputs are fed per step
        }
    }

    private Manifest.Tensor trainableOf(String layer) {
        for (Manifest.Tensor t : manifest.tensors().values()) {
            if (t.role().isLayerWeight() && layer.equals(t.layer())) {
                return t;
            }
        }
        throw new ContractException("manifest: layer '" + layer + "' has a marked input but no values or weight input");
    }
}
