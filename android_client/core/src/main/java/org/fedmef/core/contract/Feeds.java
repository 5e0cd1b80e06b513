package org.fedmef.core.contract;

import java.util.LinkedHashMap;
import org.fedmef.core.records.NdArray;

/**
 * The inputs of one graph run, in the manifest's input order (protocol §5/§6): state tensors,
 * the batch ({@code x}, {@code y}), plan scalars and the {@code step}/{@code steps} counters,
 * each checked against the tensor's dtype and shape.
 */
final class Feeds {
    private final Manifest manifest;
    private final Plan plan;

    Feeds(Manifest manifest, Plan plan) {
        this.manifest = manifest;
        this.plan = plan;
    }

    LinkedHashMap<String, NdArray> of(String graph, PackedState state, NdArray x, NdArray y, long step, long steps) {
        LinkedHashMap<String, NdArray> feeds = new LinkedHashMap<>();
        for (Manifest.Tensor t : manifest.inputs(graph)) {
            feeds.put(t.name(), TensorCheck.matches(t, value(t, state, x, y, step, steps)));
        }
        return feeds;
    }

    private NdArray value(Manifest.Tensor t, PackedState state, NdArray x, NdArray y, long step, long steps) {
        switch (t.role()) {
            case DATA:
                if ("x".equals(t.name())) {
                    return x;
                }
                if ("y".equals(t.name())) {
                    return y;
                }
                throw new ContractException("data input '" + t.name() + "': the contract defines only x and y");
            case PLAN:
                return plan.input(t);
            case COUNTER:
                if ("step".equals(t.name())) {
                    return Scalars.of(t, step);
                }
                if ("steps".equals(t.name())) {
                    return Scalars.of(t, steps);
                }
                throw new ContractException("counter input '" + t.name() + "': the contract defines only step and steps");
            default:
                NdArray value = state.get(t.name());
                if (value == null) {
                    throw new ContractException("state has no tensor '" + t.name() + "'");
                }
                return value;
        }
    }
}
