package org.fedmef.core.contract;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.nio.charset.StandardCharsets;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.NdArray;

/**
 * A hand-built manifest and wire state for unit tests, written from protocol §6: layer {@code fc}
 * (dense 3×4, packed values + positions + marked, 5 active at 0 3 5 6 11), layer {@code conv}
 * (dense 2×1×1×2, masked dense weight + mask + marked, active at 1 2), param {@code fc.bias},
 * data x [2, 4] / y [2], plan {@code lr}, counters; graphs step, growth, evaluate.
 */
final class TinyModel {
    static final int BATCH = 2;
    static final byte[] STEP_FILE = "step graph bytes".getBytes(StandardCharsets.US_ASCII);
    static final byte[] GROWTH_FILE = "growth graph bytes".getBytes(StandardCharsets.US_ASCII);
    static final byte[] EVALUATE_FILE = "evaluate graph bytes".getBytes(StandardCharsets.US_ASCII);

    private TinyModel() {
    }

    static JsonObject manifestJson() {
        JsonObject m = new JsonObject();
        m.addProperty("schema_version", 2);
        m.addProperty("runtime", "onnxruntime");
        m.addProperty("batch_size", BATCH);
        JsonArray files = new JsonArray();
        files.add(file("step.onnx", STEP_FILE));
        files.add(file("growth.onnx", GROWTH_FILE));
        files.add(file("evaluate.onnx", EVALUATE_FILE));
        m.add("files", files);
        JsonArray tensors = new JsonArray();
        tensors.add(tensor("fc.weight", "values", "float32", shape(5), "fc", shape(3, 4)));
        tensors.add(tensor("fc.positions", "positions", "int32", shape(5), "fc", shape(3, 4)));
        tensors.add(tensor("fc.marked", "marked", "float32", shape(5), "fc", shape(3, 4)));
        tensors.add(tensor("conv.weight", "weight", "float32", shape(2, 1, 1, 2), "conv", shape(2, 1, 1, 2)));
        tensors.add(tensor("conv.mask", "mask", "float32", shape(2, 1, 1, 2), "conv", shape(2, 1, 1, 2)));
        tensors.add(tensor("conv.marked", "marked", "float32", shape(2, 1, 1, 2), "conv", shape(2, 1, 1, 2)));
        tensors.add(tensor("fc.bias", "param", "float32", shape(3), null, null));
        tensors.add(tensor("x", "data", "float32", shape(BATCH, 4), null, null));
        tensors.add(tensor("y", "data", "int64", shape(BATCH), null, null));
        tensors.add(tensor("lr", "plan", "float32", shape(), null, null));
        tensors.add(tensor("step", "counter", "float32", shape(), null, null));
        tensors.add(tensor("steps", "counter", "float32", shape(), null, null));
        m.add("tensors", tensors);
        String[] state = {"fc.weight", "fc.positions", "fc.marked", "conv.weight", "conv.mask", "conv.marked", "fc.bias"};
        JsonObject graphs = new JsonObject();
        JsonArray stepOut = new JsonArray();
        stepOut.add(output("loss", "loss", "float32", shape(), null, null));
        stepOut.add(output("next/fc.weight", "update", "float32", shape(5), "fc.weight", null));
        stepOut.add(output("next/conv.weight", "update", "float32", shape(2, 1, 1, 2), "conv.weight", null));
        stepOut.add(output("next/fc.bias", "update", "float32", shape(3), "fc.bias", null));
        graphs.add("step", graph("step.onnx", concat(state, "x", "y", "lr", "step", "steps"), stepOut));
        JsonArray growthOut = new JsonArray();
        growthOut.add(output("loss", "loss", "float32", shape(), null, null));
        growthOut.add(output("grow-indices/fc", "growth-indices", "int32", shape(7), null, "fc"));
        growthOut.add(output("grow-magnitudes/fc", "growth-magnitudes", "float32", shape(7), null, "fc"));
        graphs.add("growth", graph("growth.onnx", concat(state, "x", "y"), growthOut));
        JsonArray evalOut = new JsonArray();
        evalOut.add(output("losses", "losses", "float32", shape(BATCH), null, null));
        evalOut.add(output("correct", "correct", "float32", shape(BATCH), null, null));
        graphs.add("evaluate", graph("evaluate.onnx", concat(state, "x", "y"), evalOut));
        m.add("graphs", graphs);
        m.add("key", new JsonObject());
        return m;
    }

    static Manifest manifest() {
        return Manifest.parse(manifestJson().toString());
    }

    /** fc: values 1..5 at 0 3 5 6 11, marked 3 4 11; conv: 7 8 at 1 2, marked 0 2; fc.bias 0.5 0.25 0.125. */
    static ArrayRecord.Builder wire() {
        return ArrayRecord.builder()
                .put("v/fc", NdArray.ofFloats(new float[] {1, 2, 3, 4, 5}))
                .put("m/fc", NdArray.ofBytes(new byte[] {(byte) 0x96, (byte) 0x10}))
                .put("x/fc", NdArray.ofInts(new int[] {3, 4, 11}))
                .put("v/conv", NdArray.ofFloats(new float[] {7, 8}))
                .put("m/conv", NdArray.ofBytes(new byte[] {(byte) 0x60}))
                .put("x/conv", NdArray.ofInts(new int[] {0, 2}))
                .put("d/fc.bias", NdArray.ofFloats(new float[] {0.5f, 0.25f, 0.125f}));
    }

    static ConfigRecord.Builder plan() {
        return ConfigRecord.builder().put("round", 3L).put("epochs", 2L).put("batch-size", (long) BATCH)
                .put("seed", 11L).put("lr", 0.5).put("manifest", manifest().json());
    }

    static ArrayRecord artifacts() {
        return ArrayRecord.builder().put("file/step.onnx", NdArray.ofBytes(STEP_FILE))
                .put("file/growth.onnx", NdArray.ofBytes(GROWTH_FILE))
                .put("file/evaluate.onnx", NdArray.ofBytes(EVALUATE_FILE)).build();
    }

    static long[] shape(long... dims) {
        return dims;
    }

    private static JsonObject file(String name, byte[] bytes) {
        JsonObject f = new JsonObject();
        f.addProperty("name", name);
        f.addProperty("sha256", Sha256.of(bytes));
        f.addProperty("size", bytes.length);
        return f;
    }

    private static JsonObject tensor(String name, String role, String dtype, long[] shape, String layer, long[] dense) {
        JsonObject t = new JsonObject();
        t.addProperty("name", name);
        t.addProperty("role", role);
        t.addProperty("dtype", dtype);
        t.add("shape", array(shape));
        if (layer != null) {
            t.addProperty("layer", layer);
            t.add("dense_shape", array(dense));
        }
        return t;
    }

    private static JsonObject output(String name, String role, String dtype, long[] shape, String of, String layer) {
        JsonObject o = new JsonObject();
        o.addProperty("name", name);
        o.addProperty("role", role);
        o.addProperty("dtype", dtype);
        o.add("shape", array(shape));
        if (of != null) {
            o.addProperty("of", of);
        }
        if (layer != null) {
            o.addProperty("layer", layer);
        }
        return o;
    }

    private static JsonObject graph(String file, String[] inputs, JsonArray outputs) {
        JsonObject g = new JsonObject();
        g.addProperty("file", file);
        JsonArray in = new JsonArray();
        for (String i : inputs) {
            in.add(i);
        }
        g.add("inputs", in);
        g.add("outputs", outputs);
        return g;
    }

    private static JsonArray array(long[] dims) {
        JsonArray a = new JsonArray();
        for (long d : dims) {
            a.add(d);
        }
        return a;
    }

    private static String[] concat(String[] head, String... tail) {
        String[] out = new String[head.length + tail.length];
        System.arraycopy(head, 0, out, 0, head.length);
        System.arraycopy(tail, 0, out, head.length, tail.length);
        return out;
    }
}
