package org.fedmef.core.contract;

import java.util.Arrays;

/** Small helpers for {@code long[]} shapes: element counts and readable text. */
final class Shapes {
    private Shapes() {
    }

    /** The product of the dimensions (1 for a scalar). */
    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /** {@code numel} as an int, or a ContractException when it does not fit an array. */
    static int intNumel(long[] shape, String what) {
        long n = numel(shape);
        if (n > Integer.MAX_VALUE) {
            throw new ContractException(what + ": shape " + text(shape) + " is too large");
        }
        return (int) n;
    }

    /** The shape as {@code [2, 3]}. */
    static String text(long[] shape) {
        return Arrays.toString(shape);
    }
}
