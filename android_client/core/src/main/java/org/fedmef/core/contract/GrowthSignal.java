package org.fedmef.core.contract;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.fedmef.core.records.DType;
import org.fedmef.core.records.NdArray;

/**
 * The reply's growth arrays (protocol §5): for each {@code grow/<layer> = c} of the plan, the
 * first {@code c} entries of the growth graph's {@code grow-indices/<layer>} (as int32
 * {@code gi/<layer>}) and {@code grow-magnitudes/<layer>} (float32 {@code gv/<layer>}).
 */
final class GrowthSignal {
    private GrowthSignal() {
    }

    static LinkedHashMap<String, NdArray> of(Manifest.Graph growth, Map<String, Integer> counts,
                                             Map<String, NdArray> outputs) {
        LinkedHashMap<String, NdArray> indices = new LinkedHashMap<>();
        LinkedHashMap<String, NdArray> magnitudes = new LinkedHashMap<>();
        for (Map.Entry<String, Integer> e : counts.entrySet()) {
            String layer = e.getKey();
            int count = e.getValue();
            int[] gi = indices(outputs.get(output(growth, OutputRole.GROWTH_INDICES, layer).name()));
            float[] gv = outputs.get(output(growth, OutputRole.GROWTH_MAGNITUDES, layer).name()).toFloats();
            if (count > gi.length || count > gv.length) {
                throw new ContractException(Plan.GROW_PREFIX + layer + " asks for " + count
                        + " growth candidates, the growth graph gives " + Math.min(gi.length, gv.length));
            }
            indices.put("gi/" + layer, NdArray.ofInts(Arrays.copyOf(gi, count)));
            magnitudes.put("gv/" + layer, NdArray.ofFloats(Arrays.copyOf(gv, count)));
        }
        indices.putAll(magnitudes);
        return indices;
    }

    private static Manifest.Output output(Manifest.Graph growth, OutputRole role, String layer) {
        for (Manifest.Output o : growth.outputs()) {
            if (o.role() == role && layer.equals(o.layer())) {
                if (role == OutputRole.GROWTH_MAGNITUDES && o.dtype() != DType.FLOAT32) {
                    throw new ContractException("output '" + o.name() + "' must be float32");
                }
                return o;
            }
        }
        throw new ContractException("plan asks for " + Plan.GROW_PREFIX + layer + ", but the growth graph has no "
                + role.wireName() + " output for layer '" + layer + "'");
    }

    private static int[] indices(NdArray a) {
        if (a.type() == DType.INT32) {
            return a.toInts();
        }
        if (a.type() != DType.INT64) {
            throw new ContractException("growth indices must be int32 or int64, got " + a.dtype());
        }
        long[] wide = a.toLongs();
        int[] out = new int[wide.length];
        for (int k = 0; k < out.length; k++) {
            out[k] = Math.toIntExact(wide[k]);
        }
        return out;
    }
}
