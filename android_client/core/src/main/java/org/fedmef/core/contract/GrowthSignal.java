package org.fedmef.core.contract;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
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

    static LinkedHashMap<String, NdArray> of(List<Manifest.Output> growth, Map<String, Integer> counts,
                                             Map<String, NdArray> outputs) {
        LinkedHashMap<String, NdArray> indices = new LinkedHashMap<>();
        LinkedHashMap<String, NdArray> magnitudes = new LinkedHashMap<>();
        for (Map.Entry<String, Integer> e : counts.entrySet()) {
            String layer = e.getKey();
            int count = e.getValue();
            Manifest.Output indexOutput = output(growth, OutputRole.GROWTH_INDICES, layer);
            Manifest.Output magnitudeOutput = output(growth, OutputRole.GROWTH_MAGNITUDES, layer);
            int[] gi = indexOutput == null ? new int[0] : indices(outputs.get(indexOutput.name()));
            float[] gv = magnitudeOutput == null ? new float[0] : outputs.get(magnitudeOutput.name()).toFloats();
            if (count > gi.length || count > gv.length) {
                throw new ContractException(Plan.GROW_PREFIX + layer + " asks for " + count
                        + " growth candidates, the growth graph gives " + Math.min(gi.length, gv.length)
                        + (indexOutput == null ? " (it has no growth output for layer '" + layer + "')" : ""));
            }
            indices.put("gi/" + layer, NdArray.ofInts(Arrays.copyOf(gi, count)));
            magnitudes.put("gv/" + layer, NdArray.ofFloats(Arrays.copyOf(gv, count)));
        }
        indices.putAll(magnitudes);
        return indices;
    }

    /** The growth output of {@code role} for {@code layer}, or null: a layer without one offers 0 candidates. */
    private static Manifest.Output output(List<Manifest.Output> growth, OutputRole role, String layer) {
        for (Manifest.Output o : growth) {
            if (o.role() == role && layer.equals(o.layer())) {
                if (role == OutputRole.GROWTH_MAGNITUDES && o.dtype() != DType.FLOAT32) {
                    throw new ContractException("output '" + o.name() + "' must be float32");
                }
                return o;
            }
        }
        return null;
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
