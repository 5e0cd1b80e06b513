package org.fedmef.core.contract;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.math.BigInteger;
import org.junit.jupiter.api.Test;

/** Batch order of protocol §4: SplitMix64 outputs, shuffles, cyclic padding, growth batch, shared vectors. */
class BatchOrderTest {
    @Test
    void splitMix64MatchesTheReferenceOutputsForSeedZero() {
        SplitMix64 g = new SplitMix64(0);
        assertEquals("16294208416658607535", Long.toUnsignedString(g.next()));
        assertEquals("7960286522194355700", Long.toUnsignedString(g.next()));
        assertEquals("487617019471545679", Long.toUnsignedString(g.next()));
    }

    @Test
    void splitMix64WrapsAtTheTopOfTheSeedRange() {
        SplitMix64 g = new SplitMix64(Long.MAX_VALUE);
        assertEquals("3055647633038352039", Long.toUnsignedString(g.next()));
        assertEquals("17441316833444690247", Long.toUnsignedString(g.next()));
    }

    @Test
    void batchesCarryTheGeneratorAcrossEpochsAndDropThePartialBatch() {
        int[][] expected = {{8, 1, 5, 9}, {0, 4, 3, 2}, {3, 2, 8, 9}, {0, 7, 6, 4}};
        assertArrayEquals(expected, BatchOrder.batches(10, 4, 2, 7));
        assertEquals(4, BatchOrder.steps(10, 4, 2));
    }

    @Test
    void aShortPartitionIsRepeatedCyclicallyToOneBatch() {
        assertArrayEquals(new int[][] {{2, 0, 1, 2, 0}}, BatchOrder.batches(3, 5, 1, 123));
        assertEquals(3, BatchOrder.steps(3, 5, 3));
    }

    @Test
    void growthBatchIsTheFirstBatchOfTheNextSeed() {
        assertArrayEquals(new int[] {4, 3}, BatchOrder.growthBatch(5, 2, Long.MAX_VALUE));
        assertArrayEquals(BatchOrder.batches(10, 4, 1, 8)[0], BatchOrder.growthBatch(10, 4, 7));
    }

    @Test
    void rejectsAnEmptyPartition() {
        assertThrows(ContractException.class, () -> BatchOrder.batches(0, 4, 1, 1));
    }

    @Test
    void matchesTheSharedSplitMix64Vectors() throws Exception {
        JsonArray cases = Vectors.json("shuffle.json").getAsJsonObject().getAsJsonArray("splitmix64");
        assertTrue(cases.size() > 0);
        for (JsonElement c : cases) {
            JsonObject o = c.getAsJsonObject();
            SplitMix64 g = new SplitMix64(new BigInteger(o.get("seed").getAsString()).longValue());
            for (JsonElement out : o.getAsJsonArray("outputs")) {
                assertEquals(out.getAsString(), Long.toUnsignedString(g.next()), "seed " + o.get("seed"));
            }
        }
    }

    @Test
    void matchesTheSharedBatchVectors() throws Exception {
        JsonArray cases = Vectors.json("shuffle.json").getAsJsonObject().getAsJsonArray("batches");
        assertTrue(cases.size() > 0);
        for (JsonElement c : cases) {
            JsonObject o = c.getAsJsonObject();
            int n = o.get("n").getAsInt();
            int batchSize = o.get("batch_size").getAsInt();
            int epochs = o.get("epochs").getAsInt();
            long seed = new BigInteger(o.get("seed").getAsString()).longValue();
            int[][] expected = intMatrix(o.getAsJsonArray("batches"));
            String label = "n=" + n + " batch=" + batchSize + " epochs=" + epochs + " seed=" + seed;
            assertArrayEquals(expected, BatchOrder.batches(n, batchSize, epochs, seed), label);
            assertEquals(expected.length, BatchOrder.steps(n, batchSize, epochs), label);
        }
    }

    @Test
    void matchesTheSharedRoundsBatchOrderAndGrowthBatch() throws Exception {
        JsonObject plan = Vectors.json("round/plan.json").getAsJsonObject();
        JsonObject expected = Vectors.json("round/batches.json").getAsJsonObject();
        int n = PartitionDataSource.open(Vectors.require("round/data")).train().count();
        int batchSize = plan.get("batch-size").getAsInt();
        long seed = plan.get("seed").getAsLong();
        assertArrayEquals(intMatrix(expected.getAsJsonArray("train")),
                BatchOrder.batches(n, batchSize, plan.get("epochs").getAsInt(), seed));
        JsonArray growth = new JsonArray();
        growth.add(expected.getAsJsonArray("growth"));
        assertArrayEquals(intMatrix(growth)[0], BatchOrder.growthBatch(n, batchSize, seed));
    }

    static int[][] intMatrix(JsonArray rows) {
        int[][] out = new int[rows.size()][];
        for (int i = 0; i < out.length; i++) {
            JsonArray row = rows.get(i).getAsJsonArray();
            out[i] = new int[row.size()];
            for (int j = 0; j < out[i].length; j++) {
                out[i][j] = row.get(j).getAsInt();
            }
        }
        return out;
    }
}
