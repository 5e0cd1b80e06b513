package org.fedmef.core.contract;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.TensorInfo;
import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import org.fedmef.core.records.DType;
import org.fedmef.core.records.NdArray;

/**
 * {@link NdArray} ↔ {@link OnnxTensor} for the manifest's dtypes (float32, int32, int64, uint8,
 * bool; scalars have shape {@code []}). Inputs go through direct native-order buffers, which ONNX
 * Runtime uses without another copy; outputs are copied out before the result is closed.
 */
final class OrtTensors {
    private OrtTensors() {
    }

    static OnnxTensor create(OrtEnvironment env, NdArray a) throws OrtException {
        long[] shape = a.shape();
        int n = (int) a.numel();
        switch (a.type()) {
            case FLOAT32: {
                FloatBuffer b = direct(n * 4).asFloatBuffer();
                b.put(a.toFloats());
                rewind(b);
                return OnnxTensor.createTensor(env, b, shape);
            }
            case INT32: {
                IntBuffer b = direct(n * 4).asIntBuffer();
                b.put(a.toInts());
                rewind(b);
                return OnnxTensor.createTensor(env, b, shape);
            }
            case INT64: {
                LongBuffer b = direct(n * 8).asLongBuffer();
                b.put(a.toLongs());
                rewind(b);
                return OnnxTensor.createTensor(env, b, shape);
            }
            case UINT8:
            case BOOL: {
                ByteBuffer b = direct(n);
                b.put(a.toBytes());
                rewind(b);
                return OnnxTensor.createTensor(env, b, shape, a.type() == DType.BOOL
                        ? OnnxJavaType.BOOL : OnnxJavaType.UINT8);
            }
            default:
                throw new ContractException("no ONNX tensor for dtype " + a.dtype());
        }
    }

    static NdArray copy(OnnxTensor t) {
        TensorInfo info = t.getInfo();
        long[] shape = info.getShape();
        switch (info.type) {
            case FLOAT:
                return NdArray.ofFloats(floats(t.getFloatBuffer())).reshape(shape);
            case INT32:
                return NdArray.ofInts(ints(t.getIntBuffer())).reshape(shape);
            case INT64:
                return NdArray.ofLongs(longs(t.getLongBuffer())).reshape(shape);
            case UINT8:
                return NdArray.ofBytes(bytes(t.getByteBuffer())).reshape(shape);
            case BOOL:
                return new NdArray("bool", shape, bytes(t.getByteBuffer()));
            default:
                throw new ContractException("output of unsupported ONNX type " + info.type);
        }
    }

    /** Through {@link Buffer}: Java 9+ covariant overrides of {@code rewind()} do not exist on Android. */
    private static void rewind(Buffer b) {
        b.rewind();
    }

    private static ByteBuffer direct(int size) {
        return ByteBuffer.allocateDirect(size).order(ByteOrder.nativeOrder());
    }

    private static float[] floats(FloatBuffer b) {
        float[] out = new float[b.remaining()];
        b.get(out);
        return out;
    }

    private static int[] ints(IntBuffer b) {
        int[] out = new int[b.remaining()];
        b.get(out);
        return out;
    }

    private static long[] longs(LongBuffer b) {
        long[] out = new long[b.remaining()];
        b.get(out);
        return out;
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }
}
