package org.fedmef.core.contract;

import java.io.IOException;
import java.util.LinkedHashMap;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.DType;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.RecordDict;

/**
 * The evaluate instruction of protocol §5: the validation split (the training split when it is
 * empty) in order, in chunks of the manifest's batch size with the last chunk padded by repeating
 * its first sample; mean loss and accuracy over the real samples.
 */
final class EvaluateRound {
    private final DataSource data;
    private final SessionCache sessions;

    EvaluateRound(DataSource data, SessionCache sessions) {
        this.data = data;
        this.sessions = sessions;
    }

    RecordDict run(Manifest manifest, Plan plan, ArrayRecord wire) throws IOException {
        Samples samples = data.validation().count() > 0 ? data.validation() : data.train();
        int n = samples.count();
        if (n == 0) {
            throw new ContractException("evaluate: this node has no samples");
        }
        int batchSize = manifest.batchSize();
        Manifest.Graph graph = manifest.graph(Manifest.EVALUATE);
        String lossesName = output(graph, OutputRole.LOSSES);
        String correctName = output(graph, OutputRole.CORRECT);
        PackedState state = new StatePacking(manifest).pack(wire);
        Feeds feeds = new Feeds(manifest, plan);
        int chunks = (n + batchSize - 1) / batchSize;
        double loss = 0;
        double correct = 0;
        for (int c = 0; c < chunks; c++) {
            int[] chunk = chunk(c * batchSize, Math.min(n, (c + 1) * batchSize), batchSize);
            LinkedHashMap<String, NdArray> out = sessions.run(manifest, Manifest.EVALUATE,
                    feeds.of(Manifest.EVALUATE, state, samples.batchX(chunk), samples.batchY(chunk), c, chunks));
            float[] losses = out.get(lossesName).toFloats();
            float[] hits = out.get(correctName).toFloats();
            for (int i = 0; i < Math.min(n - c * batchSize, batchSize); i++) {
                loss += losses[i];
                correct += hits[i];
            }
        }
        MetricRecord metrics = MetricRecord.builder().put("num-examples", (long) n).put("loss", loss / n)
                .put("accuracy", correct / n).build();
        return RecordDict.builder().put("metrics", metrics).build();
    }

    /** Indices {@code from..to-1}, padded to {@code size} with {@code from}. */
    static int[] chunk(int from, int to, int size) {
        int[] out = new int[size];
        for (int i = 0; i < size; i++) {
            out[i] = from + i < to ? from + i : from;
        }
        return out;
    }

    private static String output(Manifest.Graph graph, OutputRole role) {
        for (Manifest.Output o : graph.outputs()) {
            if (o.role() == role) {
                if (o.dtype() != DType.FLOAT32) {
                    throw new ContractException("manifest: evaluate output '" + o.name() + "' must be float32");
                }
                return o.name();
            }
        }
        throw new ContractException("manifest: the evaluate graph has no output of role " + role.wireName());
    }
}
