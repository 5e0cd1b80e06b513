package org.fedmef.core.contract;

import org.fedmef.core.records.NdArray;

/**
 * One number as the value of a one-element graph input (a {@code plan} or {@code counter}
 * tensor, usually of shape {@code []}), cast to the tensor's dtype.
 */
final class Scalars {
    private Scalars() {
    }

    static NdArray of(Manifest.Tensor tensor, Number value) {
        if (tensor.numel() != 1) {
            throw new ContractException("tensor '" + tensor.name() + "' of shape " + Shapes.text(tensor.shape())
                    + " cannot take the scalar " + value);
        }
        long[] shape = tensor.shape();
        switch (tensor.dtype()) {
            case FLOAT32:
                return NdArray.ofFloats(new float[] {value.floatValue()}).reshape(shape);
            case INT32:
                return NdArray.ofInts(new int[] {Math.toIntExact(integral(tensor, value))}).reshape(shape);
            case INT64:
                return NdArray.ofLongs(new long[] {integral(tensor, value)}).reshape(shape);
            case UINT8:
                return NdArray.ofBytes(new byte[] {(byte) integral(tensor, value)}).reshape(shape);
            case BOOL:
                return new NdArray("bool", shape, new byte[] {(byte) (value.doubleValue() != 0 ? 1 : 0)});
            default:
                throw new ContractException("tensor '" + tensor.name() + "': no scalar of dtype " + tensor.dtype().numpyName());
        }
    }

    private static long integral(Manifest.Tensor tensor, Number value) {
        if (value instanceof Double || value instanceof Float) {
            double d = value.doubleValue();
            if (d != Math.rint(d) || Double.isInfinite(d)) {
                throw new ContractException("tensor '" + tensor.name() + "' is " + tensor.dtype().numpyName()
                        + " but its value " + value + " is not integral");
            }
            return (long) d;
        }
        return value.longValue();
    }
}
