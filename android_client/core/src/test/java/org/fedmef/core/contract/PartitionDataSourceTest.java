package org.fedmef.core.contract;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.Npy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading a §8 partition directory, and gathering batches from it. */
class PartitionDataSourceTest {
    @TempDir
    Path dir;

    @Test
    void readsBothSplitsInFileOrder() throws Exception {
        write(3, 0);
        PartitionDataSource data = PartitionDataSource.open(dir);
        assertEquals(3, data.train().count());
        assertEquals(0, data.validation().count());
        assertArrayEquals(new long[] {3, 1, 1, 2}, data.train().shape());
        NdArray x = data.train().batchX(new int[] {2, 0});
        assertArrayEquals(new float[] {4, 5, 0, 1}, x.toFloats());
        assertArrayEquals(new long[] {2, 1, 1, 2}, x.shape());
        assertArrayEquals(new long[] {12, 10}, data.train().batchY(new int[] {2, 0}).toLongs());
        assertTrue(data.description().contains("digits"));
    }

    @Test
    void refusesLabelsOfTheWrongType() throws Exception {
        write(3, 1);
        Npy.write(NdArray.ofInts(new int[] {1, 2, 3}), dir.resolve("train_y.npy"));
        assertTrue(assertThrows(ContractException.class, () -> PartitionDataSource.open(dir)).getMessage()
                .contains("train_y.npy"));
    }

    @Test
    void refusesMismatchedCounts() throws Exception {
        write(3, 1);
        Npy.write(NdArray.ofLongs(new long[] {1, 2}), dir.resolve("train_y.npy"));
        assertThrows(ContractException.class, () -> PartitionDataSource.open(dir));
    }

    @Test
    void readsTheSharedPartition() throws Exception {
        PartitionDataSource data = PartitionDataSource.open(Vectors.require("round/data"));
        assertEquals(30, data.train().count());
        assertEquals(11, data.validation().count());
        assertArrayEquals(new long[] {30, 1, 8, 8}, data.train().shape());
    }

    private void write(int train, int val) throws Exception {
        Npy.write(NdArray.ofFloats(range(train * 2)).reshape(train, 1, 1, 2), dir.resolve("train_x.npy"));
        Npy.write(NdArray.ofLongs(labels(train)), dir.resolve("train_y.npy"));
        Npy.write(NdArray.ofFloats(range(val * 2)).reshape(val, 1, 1, 2), dir.resolve("val_x.npy"));
        Npy.write(NdArray.ofLongs(labels(val)), dir.resolve("val_y.npy"));
        Files.write(dir.resolve("partition.json"),
                "{\"dataset\": \"digits\", \"partition_id\": 0, \"num_partitions\": 3, \"seed\": 0}"
                        .getBytes(StandardCharsets.UTF_8));
    }

    private static float[] range(int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = i;
        }
        return out;
    }

    private static long[] labels(int n) {
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            out[i] = 10 + i;
        }
        return out;
    }
}
