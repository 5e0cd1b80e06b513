package org.fedmef.core.contract;

import static org.fedmef.core.contract.StatePackingTest.assertMentions;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.gson.JsonObject;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeSet;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.RecordDict;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whole rounds (protocol §5): the shared round with ONNX Runtime against the Python reference,
 * and the loop's mechanics and error paths with {@link FakeTrainer} on {@link TinyModel}.
 */
class RoundRunnerTest {
    @TempDir
    Path store;

    private final FakeTrainer fake = new FakeTrainer();

    @Test
    void theSharedTrainRoundMatchesTheReference() throws Exception {
        Map<String, NdArray> expected = RoundVectors.expectedUpdate();
        RecordDict reply;
        try (RoundRunner runner = sharedRunner()) {
            reply = runner.handle("train", sharedInstruction());
        }
        ArrayRecord update = reply.arrays("update");
        assertEquals(new TreeSet<>(expected.keySet()), new TreeSet<>(update.keys()));
        for (Map.Entry<String, NdArray> e : expected.entrySet()) {
            NdArray actual = update.get(e.getKey());
            assertEquals(e.getValue().dtype(), actual.dtype(), e.getKey());
            assertArrayEquals(e.getValue().shape(), actual.shape(), e.getKey());
            if (e.getKey().startsWith("gi/")) {
                assertArrayEquals(e.getValue().toInts(), actual.toInts(), e.getKey());
            } else {
                assertArrayEquals(e.getValue().toFloats(), actual.toFloats(), 1e-5f, e.getKey());
            }
        }
        JsonObject metrics = Vectors.json("round/expected/metrics.json").getAsJsonObject();
        MetricRecord m = reply.metrics("metrics");
        assertEquals(metrics.get("num-examples").getAsLong(), m.getLong("num-examples"));
        double loss = metrics.get("train-loss").getAsDouble();
        assertEquals(loss, m.getDouble("train-loss"), 1e-5 * Math.abs(loss));
        assertEquals(2.5, m.getDouble("seconds"), 1e-12);
    }

    @Test
    void theSharedEvaluationMatchesTheReference() throws Exception {
        JsonObject expected = Vectors.json("round/expected/evaluate.json").getAsJsonObject();
        MetricRecord m;
        try (RoundRunner runner = sharedRunner()) {
            m = runner.handle("evaluate", sharedInstruction()).metrics("metrics");
        }
        assertEquals(expected.get("num-examples").getAsLong(), m.getLong("num-examples"));
        assertEquals(expected.get("loss").getAsDouble(), m.getDouble("loss"), 1e-5);
        assertEquals(expected.get("accuracy").getAsDouble(), m.getDouble("accuracy"), 1e-12);
    }

    @Test
    void aCorruptedSharedArtifactIsAnErrorNamingTheFile() throws Exception {
        ArrayRecord good = RoundVectors.artifacts();
        byte[] bytes = good.get("file/growth.onnx").toBytes();
        bytes[bytes.length / 2] ^= 0x55;
        ArrayRecord.Builder bad = ArrayRecord.builder();
        for (Map.Entry<String, NdArray> e : good.asMap().entrySet()) {
            bad.put(e.getKey(), e.getKey().equals("file/growth.onnx") ? NdArray.ofBytes(bytes) : e.getValue());
        }
        RecordDict content = RecordDict.builder().put("state", RoundVectors.state()).put("plan", RoundVectors.plan())
                .put("artifacts", bad.build()).build();
        try (RoundRunner runner = sharedRunner()) {
            ArtifactException e = assertThrows(ArtifactException.class, () -> runner.handle("train", content));
            assertMentions(e, "growth.onnx", "sha256 mismatch", Sha256.of(bytes));
        }
    }

    @Test
    void trainsOverTheBatchOrderFeedingCountersAndPlanScalars() throws Exception {
        RecordDict reply;
        try (RoundRunner runner = fakeRunner()) {
            reply = runner.handle("train", instruction(TinyModel.plan().build()));
        }
        int[][] order = BatchOrder.batches(5, 2, 2, 11);
        assertEquals(4, fake.feeds.size());
        for (int step = 0; step < 4; step++) {
            Map<String, NdArray> feed = fake.feeds.get(step);
            assertEquals(TinyModel.manifest().graph("step").inputs(), Arrays.asList(feed.keySet().toArray()));
            assertArrayEquals(new float[] {step}, feed.get("step").toFloats());
            assertArrayEquals(new float[] {4}, feed.get("steps").toFloats());
            assertArrayEquals(new long[0], feed.get("lr").shape());
            assertArrayEquals(new float[] {0.5f}, feed.get("lr").toFloats());
            assertArrayEquals(samples().batchY(order[step]).toLongs(), feed.get("y").toLongs());
        }
        ArrayRecord update = reply.arrays("update");
        assertEquals(Arrays.asList("v/fc", "v/conv", "d/fc.bias"), Arrays.asList(update.keys().toArray()));
        assertArrayEquals(new float[] {3, 4, 5, 6, 7}, update.get("v/fc").toFloats());
        assertArrayEquals(new float[] {9, 10}, update.get("v/conv").toFloats());
        assertArrayEquals(new float[] {2.5f, 2.25f, 2.125f}, update.get("d/fc.bias").toFloats());
        MetricRecord m = reply.metrics("metrics");
        assertEquals(5L, m.getLong("num-examples"));
        assertEquals(1.5, m.getDouble("train-loss"), 1e-12);
        assertEquals(2.5, m.getDouble("seconds"), 1e-12);
    }

    @Test
    void adjustmentRoundsReportTheLargestGrowthCandidates() throws Exception {
        ConfigRecord plan = TinyModel.plan().put("grow/fc", 3L).put("grow/conv", 0L).build();
        ArrayRecord update;
        try (RoundRunner runner = fakeRunner()) {
            update = runner.handle("train", instruction(plan)).arrays("update");
        }
        assertArrayEquals(new int[] {6, 5, 4}, update.get("gi/fc").toInts());
        assertArrayEquals(new float[] {7, 6, 5}, update.get("gv/fc").toFloats());
        assertArrayEquals(new int[0], update.get("gi/conv").toInts());
        assertArrayEquals(new float[0], update.get("gv/conv").toFloats());
        Map<String, NdArray> growthFeed = fake.feeds.get(fake.feeds.size() - 1);
        assertEquals("growth", fake.graphs.get(fake.graphs.size() - 1));
        assertArrayEquals(samples().batchY(BatchOrder.growthBatch(5, 2, 11)).toLongs(), growthFeed.get("y").toLongs());
    }

    @Test
    void aGrowCountLargerThanTheGraphOutputIsAnError() throws Exception {
        try (RoundRunner runner = fakeRunner()) {
            ContractException e = assertThrows(ContractException.class,
                    () -> runner.handle("train", instruction(TinyModel.plan().put("grow/fc", 8L).build())));
            assertMentions(e, "grow/fc", "8", "7");
            assertThrows(ContractException.class,
                    () -> runner.handle("train", instruction(TinyModel.plan().put("grow/conv", 1L).build())));
        }
    }

    @Test
    void evaluatesInPaddedChunksCountingOnlyRealSamples() throws Exception {
        MetricRecord m;
        try (RoundRunner runner = fakeRunner()) {
            m = runner.handle("evaluate", instruction(TinyModel.plan().build())).metrics("metrics");
        }
        assertEquals(3, fake.feeds.size());
        assertArrayEquals(new long[] {1, 1}, fake.feeds.get(2).get("y").toLongs()); // [4, 4]: padded with its first
        assertEquals(5L, m.getLong("num-examples"));
        assertEquals(0.4, m.getDouble("loss"), 1e-12);
        assertEquals(0.6, m.getDouble("accuracy"), 1e-12);
    }

    @Test
    void opensEachGraphOnceAcrossRoundsAndClosesThem() throws Exception {
        try (RoundRunner runner = fakeRunner()) {
            runner.handle("train", instruction(TinyModel.plan().build()));
            runner.handle("train", withoutArtifacts(TinyModel.plan().build()));
            runner.handle("evaluate", withoutArtifacts(TinyModel.plan().build()));
        }
        assertEquals(Arrays.asList("step:" + TinyModel.manifest().fileOf("step").sha256(),
                "evaluate:" + TinyModel.manifest().fileOf("evaluate").sha256()), fake.opened);
        assertEquals(Arrays.asList("step", "evaluate"), fake.closed);
    }

    @Test
    void refusesAWrongSchemaVersionAnUnknownMessageAndAStateOfTheWrongShape() throws Exception {
        JsonObject v3 = TinyModel.manifestJson();
        v3.addProperty("schema_version", 3);
        try (RoundRunner runner = fakeRunner()) {
            assertMentions(assertThrows(ContractException.class,
                    () -> runner.handle("train", instruction(TinyModel.plan().put("manifest", v3.toString()).build()))),
                    "schema_version 3", "schema_version 2");
            assertMentions(assertThrows(ContractException.class,
                    () -> runner.handle("query", instruction(TinyModel.plan().build()))), "query");
            RecordDict wrongShape = RecordDict.builder()
                    .put("state", TinyModel.wire().put("d/fc.bias", NdArray.ofFloats(new float[4])).build())
                    .put("plan", TinyModel.plan().build()).put("artifacts", TinyModel.artifacts()).build();
            assertMentions(assertThrows(ContractException.class, () -> runner.handle("train", wrongShape)), "fc.bias");
            assertMentions(assertThrows(ContractException.class,
                    () -> runner.handle("train", instruction(TinyModel.plan().put("batch-size", 4L).build()))), "batch");
        }
    }

    @Test
    void aMissingArtifactIsAnErrorNamingTheFile() throws Exception {
        try (RoundRunner runner = fakeRunner()) {
            assertMentions(assertThrows(ArtifactException.class,
                    () -> runner.handle("train", withoutArtifacts(TinyModel.plan().build()))), "step.onnx", "missing");
        }
    }

    private RoundRunner sharedRunner() throws Exception {
        return new RoundRunner(PartitionDataSource.open(Vectors.require("round/data")), new ArtifactStore(store),
                new OrtTrainer(1), new SteppingTicker());
    }

    private static RecordDict sharedInstruction() throws Exception {
        return RecordDict.builder().put("state", RoundVectors.state()).put("plan", RoundVectors.plan())
                .put("artifacts", RoundVectors.artifacts()).build();
    }

    private RoundRunner fakeRunner() {
        DataSource data = new DataSource() {
            @Override
            public Samples train() {
                return samples();
            }

            @Override
            public Samples validation() {
                return new Samples(new float[20], new long[] {5, 4}, new long[] {0, 1, 0, 0, 1});
            }
        };
        return new RoundRunner(data, new ArtifactStore(store), fake, new SteppingTicker());
    }

    private static Samples samples() {
        float[] x = new float[20];
        for (int i = 0; i < x.length; i++) {
            x[i] = i;
        }
        return new Samples(x, new long[] {5, 4}, new long[] {10, 11, 12, 13, 14});
    }

    private static RecordDict instruction(ConfigRecord plan) {
        return RecordDict.builder().put("state", TinyModel.wire().build()).put("plan", plan)
                .put("artifacts", TinyModel.artifacts()).build();
    }

    private static RecordDict withoutArtifacts(ConfigRecord plan) {
        return RecordDict.builder().put("state", TinyModel.wire().build()).put("plan", plan).build();
    }

    /** 10.0, 12.5, 15.0, …: every round takes 2.5 s. */
    private static final class SteppingTicker implements Ticker {
        private double now = 7.5;

        @Override
        public double seconds() {
            now += 2.5;
            return now;
        }
    }
}
