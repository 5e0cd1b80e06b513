package org.fedmef.core.contract;

import java.util.ArrayList;
import java.util.List;

/**
 * The deterministic batch order of protocol §4: SplitMix64 seeded with the plan's seed, a
 * Fisher–Yates shuffle per epoch (generator state carried across epochs), a short partition
 * repeated cyclically up to one batch, fixed-size batches with the trailing partial batch dropped.
 */
public final class BatchOrder {
    private BatchOrder() {
    }

    /** Every batch of the round, in order: sample indices into the training split. */
    public static int[][] batches(int n, int batchSize, int epochs, long seed) {
        check(n, batchSize, epochs);
        SplitMix64 generator = new SplitMix64(seed);
        List<int[]> out = new ArrayList<>();
        for (int epoch = 0; epoch < epochs; epoch++) {
            int[] order = shuffled(n, generator);
            if (n < batchSize) {
                order = cyclic(order, batchSize);
            }
            for (int b = 0; b < order.length / batchSize; b++) {
                int[] batch = new int[batchSize];
                System.arraycopy(order, b * batchSize, batch, 0, batchSize);
                out.add(batch);
            }
        }
        return out.toArray(new int[0][]);
    }

    /** The number of batches {@link #batches} yields (it does not depend on the seed). */
    public static int steps(int n, int batchSize, int epochs) {
        check(n, batchSize, epochs);
        return epochs * (Math.max(n, batchSize) / batchSize);
    }

    /** The growth batch: the first batch of {@code batches(n, batchSize, 1, seed + 1)}. */
    public static int[] growthBatch(int n, int batchSize, long seed) {
        return batches(n, batchSize, 1, seed + 1)[0];
    }

    private static int[] shuffled(int n, SplitMix64 generator) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        for (int i = n - 1; i >= 1; i--) {
            int j = generator.nextBelow(i + 1);
            int swap = order[i];
            order[i] = order[j];
            order[j] = swap;
        }
        return order;
    }

    private static int[] cyclic(int[] order, int length) {
        int[] out = new int[length];
        for (int i = 0; i < length; i++) {
            out[i] = order[i % order.length];
        }
        return out;
    }

    private static void check(int n, int batchSize, int epochs) {
        if (n <= 0 || batchSize <= 0 || epochs < 0) {
            throw new ContractException("batch order needs n > 0, batch size > 0 and epochs >= 0; got n=" + n
                    + ", batch size=" + batchSize + ", epochs=" + epochs);
        }
    }
}
