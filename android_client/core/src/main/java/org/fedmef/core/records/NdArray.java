package org.fedmef.core.records;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * An immutable n-dimensional array: a numpy dtype name, a shape and the elements as C-order
 * little-endian bytes (exactly numpy's in-memory layout of a contiguous array).
 *
 * <p>This is the value every FedMef tensor travels as: {@link Npy} turns it into the {@code .npy}
 * bytes Flower's {@code Array} carries, and the typed accessors turn it into Java arrays. Inputs
 * and outputs are copied, so an instance never changes.
 */
public final class NdArray {
    private final DType dtype;
    private final long[] shape;
    private final byte[] data;

    /**
     * @param dtype numpy dtype name ({@code float32, float64, int32, int64, int8, uint8, bool})
     * @param shape dimensions (empty for a scalar), each ≥ 0
     * @param data  little-endian, C-order element bytes; length must be numel × item size
     */
    public NdArray(String dtype, long[] shape, byte[] data) {
        this(DType.ofName(dtype), shape.clone(), data.clone());
    }

    private NdArray(DType dtype, long[] shape, byte[] data) {
        this.dtype = dtype;
        this.shape = shape;
        this.data = data;
        long n = numel(shape);
        if (n * dtype.itemSize() != data.length) {
            throw new IllegalArgumentException("data has " + data.length + " bytes, shape "
                    + Arrays.toString(shape) + " of " + dtype.numpyName() + " needs " + n * dtype.itemSize());
        }
    }

    /** A float32 array; without a shape it is one-dimensional ({@code data.length}). */
    public static NdArray ofFloats(float[] data, long... shape) {
        ByteBuffer b = buffer(data.length * 4);
        b.asFloatBuffer().put(data);
        return new NdArray(DType.FLOAT32, shapeOr(shape, data.length), b.array());
    }

    /** An int32 array; without a shape it is one-dimensional. */
    public static NdArray ofInts(int[] data, long... shape) {
        ByteBuffer b = buffer(data.length * 4);
        b.asIntBuffer().put(data);
        return new NdArray(DType.INT32, shapeOr(shape, data.length), b.array());
    }

    /** An int64 array; without a shape it is one-dimensional. */
    public static NdArray ofLongs(long[] data, long... shape) {
        ByteBuffer b = buffer(data.length * 8);
        b.asLongBuffer().put(data);
        return new NdArray(DType.INT64, shapeOr(shape, data.length), b.array());
    }

    /** A uint8 array (e.g. a file's bytes or a packed mask); without a shape it is one-dimensional. */
    public static NdArray ofBytes(byte[] data, long... shape) {
        return new NdArray(DType.UINT8, shapeOr(shape, data.length), data.clone());
    }

    /** The same elements with another shape of equal element count ({@code reshape()} gives a scalar). */
    public NdArray reshape(long... newShape) {
        return new NdArray(dtype, newShape.clone(), data);
    }

    /** numpy dtype name, e.g. {@code "float32"}. */
    public String dtype() {
        return dtype.numpyName();
    }

    /** The dtype as an enum. */
    public DType type() {
        return dtype;
    }

    /** A copy of the shape. */
    public long[] shape() {
        return shape.clone();
    }

    /** Number of elements (1 for a scalar). */
    public long numel() {
        return numel(shape);
    }

    /** The elements of a float32 array. */
    public float[] toFloats() {
        require(DType.FLOAT32);
        float[] out = new float[data.length / 4];
        view().asFloatBuffer().get(out);
        return out;
    }

    /** The elements of an int32 array. */
    public int[] toInts() {
        require(DType.INT32);
        int[] out = new int[data.length / 4];
        view().asIntBuffer().get(out);
        return out;
    }

    /** The elements of an int64 array. */
    public long[] toLongs() {
        require(DType.INT64);
        long[] out = new long[data.length / 8];
        view().asLongBuffer().get(out);
        return out;
    }

    /** A copy of the raw little-endian element bytes (any dtype; for uint8 these are the elements). */
    public byte[] toBytes() {
        return data.clone();
    }

    /** Size of the element bytes, without copying them. */
    public int byteSize() {
        return data.length;
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (!(o instanceof NdArray)) {
            return false;
        }
        NdArray other = (NdArray) o;
        return dtype == other.dtype && Arrays.equals(shape, other.shape) && Arrays.equals(data, other.data);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * dtype.hashCode() + Arrays.hashCode(shape)) + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "NdArray(" + dtype.numpyName() + ", " + Arrays.toString(shape) + ")";
    }

    /** Creates an array around bytes the caller hands over (no copy): for trusted decoders. */
    static NdArray wrap(DType dtype, long[] shape, byte[] data) {
        return new NdArray(dtype, shape, data);
    }

    /** Product of the dimensions; throws on a negative dimension or an overflowing count. */
    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    private void require(DType expected) {
        if (dtype != expected) {
            throw new IllegalStateException("array is " + dtype.numpyName() + ", not " + expected.numpyName());
        }
    }

    private ByteBuffer view() {
        return ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static ByteBuffer buffer(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static long[] shapeOr(long[] shape, int length) {
        return shape.length == 0 ? new long[] {length} : shape.clone();
    }
}
