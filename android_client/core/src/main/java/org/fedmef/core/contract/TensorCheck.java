package org.fedmef.core.contract;

import java.util.Arrays;
import org.fedmef.core.records.DType;
import org.fedmef.core.records.NdArray;

/** Checks an array against the dtype and shape the manifest gives a tensor, naming the tensor on mismatch. */
final class TensorCheck {
    private TensorCheck() {
    }

    /** {@code array} must have exactly {@code dtype} and {@code shape}; {@code what} names it in the error. */
    static NdArray matches(String what, DType dtype, long[] shape, NdArray array) {
        if (array.type() != dtype || !Arrays.equals(array.shape(), shape)) {
            throw new ContractException(what + ": expected " + dtype.numpyName() + " " + Shapes.text(shape)
                    + ", got " + array.dtype() + " " + Shapes.text(array.shape()));
        }
        return array;
    }

    /** The array matches the input tensor's dtype and shape. */
    static NdArray matches(Manifest.Tensor tensor, NdArray array) {
        return matches("tensor '" + tensor.name() + "'", tensor.dtype(), tensor.shape(), array);
    }
}
