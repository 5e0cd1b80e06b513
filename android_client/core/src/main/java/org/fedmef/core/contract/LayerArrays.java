package org.fedmef.core.contract;

import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.DType;
import org.fedmef.core.records.NdArray;

/**
 * The per-layer conversions of protocol §2/§6: wire arrays ({@code v/ m/ d/ x/}) read and checked,
 * active positions from the packed mask, dense weights and masks scattered from them, marked
 * vectors, and packed values gathered back from a dense weight.
 */
final class LayerArrays {
    static final String VALUES = "v/";
    static final String MASK = "m/";
    static final String DENSE = "d/";
    static final String MARKED = "x/";

    private LayerArrays() {
    }

    /** Ascending active flat indices of the tensor's layer, from {@code m/<layer>}. */
    static int[] positions(ArrayRecord wire, Manifest.Tensor t) {
        NdArray bits = wire(wire, MASK + t.layer(), t, DType.UINT8);
        int numel = Shapes.intNumel(t.denseShape(), "layer '" + t.layer() + "'");
        if (bits.shape().length != 1) {
            throw new ContractException("state '" + MASK + t.layer() + "' must be 1-D, got " + Shapes.text(bits.shape()));
        }
        try {
            return MaskBits.positions(bits.toBytes(), numel);
        } catch (ContractException e) {
            throw new ContractException("state '" + MASK + t.layer() + "' (layer of dense shape "
                    + Shapes.text(t.denseShape()) + "): " + e.getMessage(), e);
        }
    }

    /** {@code v/<layer>}: float32 of shape {@code [nnz]} where nnz is the mask's active count. */
    static NdArray values(ArrayRecord wire, Manifest.Tensor t, int nnz) {
        NdArray values = wire(wire, VALUES + t.layer(), t, DType.FLOAT32);
        return TensorCheck.matches("state '" + VALUES + t.layer() + "' (tensor '" + t.name() + "', "
                + nnz + " active weights in " + MASK + t.layer() + ")", DType.FLOAT32, new long[] {nnz}, values);
    }

    /** The wire array {@code key} the tensor takes, which must have {@code dtype}. */
    static NdArray wire(ArrayRecord wire, String key, Manifest.Tensor t, DType dtype) {
        if (!wire.has(key)) {
            throw new ContractException("state has no '" + key + "' (needed for tensor '" + t.name() + "')");
        }
        NdArray a = wire.get(key);
        if (a.type() != dtype) {
            throw new ContractException("state '" + key + "' (tensor '" + t.name() + "'): expected " + dtype.numpyName()
                    + ", got " + a.dtype());
        }
        return a;
    }

    /** A dense float32 weight of the tensor's shape: zeros with {@code values} at {@code positions}. */
    static NdArray scatter(Manifest.Tensor t, float[] values, int[] positions) {
        float[] dense = new float[denseNumel(t)];
        for (int k = 0; k < positions.length; k++) {
            dense[positions[k]] = values[k];
        }
        return NdArray.ofFloats(dense).reshape(t.shape());
    }

    /** Active positions as a 1-D array of the tensor's integer dtype. */
    static NdArray cast(Manifest.Tensor t, int[] positions) {
        if (t.dtype() == DType.INT32) {
            return NdArray.ofInts(positions);
        }
        if (t.dtype() == DType.INT64) {
            long[] wide = new long[positions.length];
            for (int k = 0; k < wide.length; k++) {
                wide[k] = positions[k];
            }
            return NdArray.ofLongs(wide);
        }
        throw new ContractException("tensor '" + t.name() + "': positions must be int32 or int64, not " + t.dtype().numpyName());
    }

    /** The dense 0/1 mask in the tensor's dtype (float32, uint8 or bool) and shape. */
    static NdArray mask(Manifest.Tensor t, int[] positions) {
        boolean[] on = new boolean[denseNumel(t)];
        for (int p : positions) {
            on[p] = true;
        }
        return ofFlags(t, on);
    }

    /** 1 where the flat index is in {@code x/<layer>}: over the active positions for a values input, else dense. */
    static NdArray marked(ArrayRecord wire, Manifest.Tensor t, Manifest.Tensor trainable, int[] positions) {
        boolean[] dense = new boolean[Shapes.intNumel(t.denseShape(), "layer '" + t.layer() + "'")];
        for (long index : markedIndices(wire, t)) {
            if (index < 0 || index >= dense.length) {
                throw new ContractException("state '" + MARKED + t.layer() + "' has flat index " + index
                        + " outside the layer's " + dense.length + " weights");
            }
            dense[(int) index] = true;
        }
        if (trainable.role() != InputRole.VALUES) {
            return ofFlags(t, dense);
        }
        boolean[] packed = new boolean[positions.length];
        for (int k = 0; k < packed.length; k++) {
            packed[k] = dense[positions[k]];
        }
        return ofFlags(t, packed);
    }

    /** The float32 values of a dense weight at the active positions, ascending. */
    static NdArray gather(float[] dense, int[] positions) {
        float[] out = new float[positions.length];
        for (int k = 0; k < out.length; k++) {
            out[k] = dense[positions[k]];
        }
        return NdArray.ofFloats(out);
    }

    private static long[] markedIndices(ArrayRecord wire, Manifest.Tensor t) {
        String key = MARKED + t.layer();
        if (!wire.has(key)) {
            return new long[0];
        }
        NdArray a = wire.get(key);
        if (a.type() == DType.INT64) {
            return a.toLongs();
        }
        if (a.type() != DType.INT32) {
            throw new ContractException("state '" + key + "' (tensor '" + t.name() + "'): expected int32, got " + a.dtype());
        }
        int[] narrow = a.toInts();
        long[] out = new long[narrow.length];
        for (int k = 0; k < out.length; k++) {
            out[k] = narrow[k];
        }
        return out;
    }

    private static NdArray ofFlags(Manifest.Tensor t, boolean[] flags) {
        if (flags.length != t.numel()) {
            throw new ContractException("tensor '" + t.name() + "' of shape " + Shapes.text(t.shape()) + " cannot hold the "
                    + flags.length + " elements of layer '" + t.layer() + "'");
        }
        if (t.dtype() == DType.FLOAT32) {
            float[] out = new float[flags.length];
            for (int k = 0; k < out.length; k++) {
                out[k] = flags[k] ? 1f : 0f;
            }
            return NdArray.ofFloats(out).reshape(t.shape());
        }
        if (t.dtype() == DType.UINT8 || t.dtype() == DType.BOOL) {
            byte[] out = new byte[flags.length];
            for (int k = 0; k < out.length; k++) {
                out[k] = (byte) (flags[k] ? 1 : 0);
            }
            return new NdArray(t.dtype().numpyName(), t.shape(), out);
        }
        throw new ContractException("tensor '" + t.name() + "': a 0/1 input must be float32, uint8 or bool, not "
                + t.dtype().numpyName());
    }

    private static int denseNumel(Manifest.Tensor t) {
        int numel = Shapes.intNumel(t.denseShape(), "layer '" + t.layer() + "'");
        if (t.numel() != numel) {
            throw new ContractException("tensor '" + t.name() + "' of shape " + Shapes.text(t.shape())
                    + " does not hold the dense shape " + Shapes.text(t.denseShape()));
        }
        return numel;
    }
}
