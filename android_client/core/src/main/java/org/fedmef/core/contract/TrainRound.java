package org.fedmef.core.contract;

import java.io.IOException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.RecordDict;

/**
 * The train instruction of protocol §5 once the files are verified: pack the state, run the step
 * graph over the round's batch order, unpack the trained state, add the growth signal on
 * adjustment rounds, and reply {@code update} + {@code metrics}.
 */
final class TrainRound {
    private final DataSource data;
    private final SessionCache sessions;

    TrainRound(DataSource data, SessionCache sessions) {
        this.data = data;
        this.sessions = sessions;
    }

    /** The reply content without the {@code seconds} metric, which the caller adds. */
    Reply run(Manifest manifest, Plan plan, ArrayRecord wire) throws IOException {
        int batchSize = plan.batchSize();
        if (batchSize != manifest.batchSize()) {
            throw new ContractException("plan batch-size " + batchSize + " differs from the manifest's batch_size "
                    + manifest.batchSize());
        }
        Samples train = data.train();
        StatePacking packing = new StatePacking(manifest);
        Feeds feeds = new Feeds(manifest, plan);
        PackedState state = packing.pack(wire);
        int[][] order = BatchOrder.batches(train.count(), batchSize, plan.epochs(), plan.seed());
        String loss = lossOutput(manifest.graph(Manifest.STEP));
        double losses = 0;
        for (int step = 0; step < order.length; step++) {
            LinkedHashMap<String, NdArray> out = sessions.run(manifest, Manifest.STEP,
                    feeds.of(Manifest.STEP, state, train.batchX(order[step]), train.batchY(order[step]), step, order.length));
            state = packing.apply(Manifest.STEP, state, out);
            losses += out.get(loss).toFloats()[0];
        }
        LinkedHashMap<String, NdArray> update = packing.unpack(Manifest.STEP, state);
        Map<String, Integer> grow = plan.growCounts();
        if (!grow.isEmpty()) {
            update.putAll(growth(manifest, feeds, state, train, plan, order.length));
        }
        double meanLoss = order.length == 0 ? 0.0 : losses / order.length;
        return new Reply(ArrayRecord.of(update), train.count(), meanLoss);
    }

    /** The growth signal for the plan's {@code grow/} counts, from the growth graph on the growth batch. */
    private LinkedHashMap<String, NdArray> growth(Manifest manifest, Feeds feeds, PackedState state, Samples train,
                                                  Plan plan, int steps) {
        Map<String, Integer> counts = plan.growCounts();
        if (!manifest.hasGraph(Manifest.GROWTH)) {
            return GrowthSignal.of(Collections.<Manifest.Output>emptyList(), counts, new LinkedHashMap<String, NdArray>());
        }
        int[] batch = BatchOrder.growthBatch(train.count(), manifest.batchSize(), plan.seed());
        LinkedHashMap<String, NdArray> out = sessions.run(manifest, Manifest.GROWTH,
                feeds.of(Manifest.GROWTH, state, train.batchX(batch), train.batchY(batch), 0, steps));
        return GrowthSignal.of(manifest.graph(Manifest.GROWTH).outputs(), counts, out);
    }

    private static String lossOutput(Manifest.Graph step) {
        for (Manifest.Output o : step.outputs()) {
            if (o.role() == OutputRole.LOSS) {
                return o.name();
            }
        }
        throw new ContractException("manifest: the step graph has no output of role loss");
    }

    /** A train reply before timing: the update and the training metrics. */
    static final class Reply {
        private final ArrayRecord update;
        private final long examples;
        private final double loss;

        Reply(ArrayRecord update, long examples, double loss) {
            this.update = update;
            this.examples = examples;
            this.loss = loss;
        }

        RecordDict content(double seconds) {
            MetricRecord metrics = MetricRecord.builder().put("num-examples", examples).put("train-loss", loss)
                    .put("seconds", seconds).build();
            return RecordDict.builder().put("update", update).put("metrics", metrics).build();
        }
    }
}
