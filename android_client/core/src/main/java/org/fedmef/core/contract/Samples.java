package org.fedmef.core.contract;

import java.util.Arrays;
import org.fedmef.core.records.NdArray;

/**
 * A split of labelled samples: inputs {@code x} (float32, C order, shape {@code [count, ...]})
 * and labels {@code y} (int64, {@code count}). Immutable; {@link #batchX}/{@link #batchY} gather
 * the rows of a batch in the order given.
 */
public final class Samples {
    private final float[] x;
    private final long[] shape;
    private final long[] y;
    private final int sampleSize;

    public Samples(float[] x, long[] shape, long[] y) {
        if (shape.length < 1 || shape[0] != y.length) {
            throw new ContractException("samples: x of shape " + Shapes.text(shape) + " for " + y.length + " labels");
        }
        if (Shapes.numel(shape) != x.length) {
            throw new ContractException("samples: " + x.length + " values for shape " + Shapes.text(shape));
        }
        this.x = x.clone();
        this.shape = shape.clone();
        this.y = y.clone();
        this.sampleSize = Shapes.intNumel(Arrays.copyOfRange(shape, 1, shape.length), "one sample");
    }

    /** Number of samples. */
    public int count() {
        return y.length;
    }

    /** The shape of {@code x}: {@code [count, ...]}. */
    public long[] shape() {
        return shape.clone();
    }

    /** float32 {@code [indices.length, ...]}: the inputs of the given samples. */
    public NdArray batchX(int[] indices) {
        float[] out = new float[indices.length * sampleSize];
        for (int i = 0; i < indices.length; i++) {
            System.arraycopy(x, index(indices[i]) * sampleSize, out, i * sampleSize, sampleSize);
        }
        long[] batchShape = shape.clone();
        batchShape[0] = indices.length;
        return NdArray.ofFloats(out).reshape(batchShape);
    }

    /** int64 {@code [indices.length]}: the labels of the given samples. */
    public NdArray batchY(int[] indices) {
        long[] out = new long[indices.length];
        for (int i = 0; i < indices.length; i++) {
            out[i] = y[index(indices[i])];
        }
        return NdArray.ofLongs(out).reshape(indices.length);
    }

    private int index(int i) {
        if (i < 0 || i >= y.length) {
            throw new IndexOutOfBoundsException("sample " + i + " of " + y.length);
        }
        return i;
    }
}
