package org.fedmef.core.contract;

import static org.fedmef.core.contract.StatePackingTest.assertMentions;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import org.fedmef.core.records.NdArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The ONNX Runtime trainer: every manifest dtype in and out, scalars, feeding only the session's inputs. */
class OrtTrainerTest {
    /**
     * A 393-byte ONNX graph (opset 13) built with {@code onnx.helper}: inputs a float32[2],
     * k int64[], idx int32[3], u8 uint8[2], flag bool[2], unused float32[1]; outputs doubled = a·2,
     * k_float = float(k), idx_out = idx, u8_out = u8, flag_not = ¬flag.
     */
    private static final String TINY_ONNX = ""
            + "CAgSC2ZlZG1lZi10ZXN0OvECChYKAWEKA3R3bxIHZG91YmxlZCIDTXVsCh0KAWsSB2tfZmxvYXQiBENhc3QqCQoCdG8YAaABAgoY"
            + "CgNpZHgSB2lkeF9vdXQiCElkZW50aXR5ChYKAnU4EgZ1OF9vdXQiCElkZW50aXR5ChUKBGZsYWcSCGZsYWdfbm90IgNOb3QSBHRp"
            + "bnkqDRABIgQAAABAQgN0d29aDwoBYRIKCggIARIECgIIAloLCgFrEgYKBAgHEgBaEQoDaWR4EgoKCAgGEgQKAggDWhAKAnU4EgoK"
            + "CAgCEgQKAggCWhIKBGZsYWcSCgoICAkSBAoCCAJaFAoGdW51c2VkEgoKCAgBEgQKAggBYhUKB2RvdWJsZWQSCgoICAESBAoCCAJi"
            + "EQoHa19mbG9hdBIGCgQIARIAYhUKB2lkeF9vdXQSCgoICAYSBAoCCANiFAoGdThfb3V0EgoKCAgCEgQKAggCYhYKCGZsYWdfbm90"
            + "EgoKCAgJEgQKAggCQgQKABAN";

    @TempDir
    Path dir;

    @Test
    void runsEveryDtypeAndReturnsTheManifestOutputsInOrder() throws Exception {
        try (GraphSession session = new OrtTrainer(1).open(tinyManifest("onnxruntime"), "step", tinyFile())) {
            LinkedHashMap<String, NdArray> out = session.run(feeds());
            assertEquals(Arrays.asList("k_float", "doubled", "idx_out", "u8_out", "flag_not"),
                    Arrays.asList(out.keySet().toArray()));
            assertArrayEquals(new float[] {3, -1}, out.get("doubled").toFloats());
            assertArrayEquals(new long[0], out.get("k_float").shape());
            assertArrayEquals(new float[] {7}, out.get("k_float").toFloats());
            assertArrayEquals(new int[] {-1, 0, 2147483647}, out.get("idx_out").toInts());
            assertArrayEquals(new byte[] {0, (byte) 255}, out.get("u8_out").toBytes());
            assertEquals("uint8", out.get("u8_out").dtype());
            assertEquals("bool", out.get("flag_not").dtype());
            assertArrayEquals(new byte[] {0, 1}, out.get("flag_not").toBytes());
            assertArrayEquals(new float[] {3, -1}, session.run(feeds()).get("doubled").toFloats()); // reusable
        }
    }

    @Test
    void feedsOnlyTheInputsTheSessionReports() throws Exception {
        LinkedHashMap<String, NdArray> feeds = feeds();
        feeds.put("dropped-by-the-runtime", NdArray.ofFloats(new float[] {1}));
        try (GraphSession session = new OrtTrainer(0).open(tinyManifest("onnxruntime"), "step", tinyFile())) {
            assertArrayEquals(new float[] {3, -1}, session.run(feeds).get("doubled").toFloats());
        }
    }

    @Test
    void aSessionInputMissingFromTheFeedsIsAnError() throws Exception {
        LinkedHashMap<String, NdArray> feeds = feeds();
        feeds.remove("k");
        try (GraphSession session = new OrtTrainer(1).open(tinyManifest("onnxruntime"), "step", tinyFile())) {
            assertMentions(assertThrows(ContractException.class, () -> session.run(feeds)), "tiny.onnx", "'k'");
        }
    }

    @Test
    void refusesAnotherRuntimeAndOutputsTheGraphLacks() throws Exception {
        Path file = tinyFile();
        assertMentions(assertThrows(ContractException.class,
                () -> new OrtTrainer(1).open(tinyManifest("executorch"), "step", file)), "executorch");
        JsonObject json = tinyManifestJson("onnxruntime");
        json.getAsJsonObject("graphs").getAsJsonObject("step").getAsJsonArray("outputs")
                .add(output("absent", "losses", "float32"));
        assertMentions(assertThrows(ContractException.class,
                () -> new OrtTrainer(1).open(Manifest.parse(json.toString()), "step", file)), "absent");
    }

    @Test
    void aFileThatIsNotAGraphFailsNamingIt() throws Exception {
        Path file = dir.resolve("garbage");
        Files.write(file, new byte[] {1, 2, 3});
        assertMentions(assertThrows(TrainerException.class,
                () -> new OrtTrainer(1).open(tinyManifest("onnxruntime"), "step", file)), "tiny.onnx");
    }

    @Test
    void opensTheSharedGraphs() throws Exception {
        Manifest m = Manifest.parse(RoundVectors.manifestJson());
        for (String graph : new String[] {"step", "growth", "evaluate"}) {
            Path file = Vectors.artifacts().resolve(m.fileOf(graph).name());
            try (GraphSession session = new OrtTrainer(1).open(m, graph, file)) {
                assertNotNull(session, graph); // loads, and every manifest output exists in the graph
            }
        }
    }

    private Path tinyFile() throws Exception {
        Path file = dir.resolve("tiny.onnx");
        Files.write(file, Base64.getDecoder().decode(TINY_ONNX));
        return file;
    }

    private static LinkedHashMap<String, NdArray> feeds() {
        LinkedHashMap<String, NdArray> feeds = new LinkedHashMap<>();
        feeds.put("a", NdArray.ofFloats(new float[] {1.5f, -0.5f}));
        feeds.put("k", NdArray.ofLongs(new long[] {7}).reshape());
        feeds.put("idx", NdArray.ofInts(new int[] {-1, 0, Integer.MAX_VALUE}));
        feeds.put("u8", NdArray.ofBytes(new byte[] {0, (byte) 255}));
        feeds.put("flag", new NdArray("bool", new long[] {2}, new byte[] {1, 0}));
        feeds.put("unused", NdArray.ofFloats(new float[] {0}));
        return feeds;
    }

    private static Manifest tinyManifest(String runtime) {
        return Manifest.parse(tinyManifestJson(runtime).toString());
    }

    private static JsonObject tinyManifestJson(String runtime) {
        JsonObject m = new JsonObject();
        m.addProperty("schema_version", 2);
        m.addProperty("runtime", runtime);
        m.addProperty("batch_size", 2);
        JsonArray files = new JsonArray();
        JsonObject file = new JsonObject();
        byte[] bytes = Base64.getDecoder().decode(TINY_ONNX);
        file.addProperty("name", "tiny.onnx");
        file.addProperty("sha256", Sha256.of(bytes));
        file.addProperty("size", bytes.length);
        files.add(file);
        m.add("files", files);
        m.add("tensors", new JsonArray());
        JsonObject graph = new JsonObject();
        graph.addProperty("file", "tiny.onnx");
        graph.add("inputs", new JsonArray());
        JsonArray outputs = new JsonArray();
        outputs.add(output("k_float", "loss", "float32"));
        outputs.add(output("doubled", "losses", "float32"));
        outputs.add(output("idx_out", "losses", "int32"));
        outputs.add(output("u8_out", "losses", "uint8"));
        outputs.add(output("flag_not", "losses", "bool"));
        graph.add("outputs", outputs);
        JsonObject graphs = new JsonObject();
        graphs.add("step", graph);
        graphs.add("evaluate", graph);
        m.add("graphs", graphs);
        return m;
    }

    private static JsonObject output(String name, String role, String dtype) {
        JsonObject o = new JsonObject();
        o.addProperty("name", name);
        o.addProperty("role", role);
        o.addProperty("dtype", dtype);
        o.add("shape", new JsonArray());
        return o;
    }
}
