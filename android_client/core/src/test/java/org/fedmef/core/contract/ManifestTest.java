package org.fedmef.core.contract;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.util.Arrays;
import java.util.function.Consumer;
import org.fedmef.core.records.DType;
import org.junit.jupiter.api.Test;

/** Manifest parsing and validation (protocol §6, schema version 2). */
class ManifestTest {
    @Test
    void parsesEveryFieldAClientUses() {
        String json = TinyModel.manifestJson().toString();
        Manifest m = Manifest.parse(json);
        assertEquals(json, m.json());
        assertEquals("onnxruntime", m.runtime());
        assertEquals(2, m.batchSize());
        assertEquals(Arrays.asList("step.onnx", "growth.onnx", "evaluate.onnx"), Arrays.asList(
                m.files().get(0).name(), m.files().get(1).name(), m.files().get(2).name()));
        assertEquals(Sha256.of(TinyModel.STEP_FILE), m.fileOf("step").sha256());
        assertEquals(TinyModel.STEP_FILE.length, m.fileOf("step").size());
        Manifest.Tensor fc = m.tensor("fc.weight");
        assertEquals(InputRole.VALUES, fc.role());
        assertEquals(DType.FLOAT32, fc.dtype());
        assertArrayEquals(new long[] {5}, fc.shape());
        assertEquals("fc", fc.layer());
        assertArrayEquals(new long[] {3, 4}, fc.denseShape());
        assertArrayEquals(new long[0], m.tensor("lr").shape());
        assertNull(m.tensor("lr").layer());
        assertEquals("x", m.graph("step").inputs().get(7));
        Manifest.Output next = m.graph("step").output("next/conv.weight");
        assertEquals(OutputRole.UPDATE, next.role());
        assertEquals("conv.weight", next.of());
        assertEquals("fc", m.graph("growth").output("grow-indices/fc").layer());
        assertTrue(m.hasGraph("evaluate"));
    }

    @Test
    void refusesAnUnknownSchemaVersionNamingBoth() {
        ContractException e = invalid(m -> m.addProperty("schema_version", 3));
        assertTrue(e.getMessage().contains("schema_version 3"), e.getMessage());
        assertTrue(e.getMessage().contains("schema_version 2"), e.getMessage());
        assertTrue(invalid(m -> m.remove("schema_version")).getMessage().contains("schema_version none"));
    }

    @Test
    void refusesMissingFields() {
        assertMessage(invalid(m -> m.remove("batch_size")), "batch_size");
        assertMessage(invalid(m -> tensor(m, 0).remove("dtype")), "fc.weight", "dtype");
        assertMessage(invalid(m -> tensor(m, 1).remove("dense_shape")), "fc.positions", "dense_shape");
        assertMessage(invalid(m -> m.getAsJsonArray("files").get(0).getAsJsonObject().remove("sha256")), "sha256");
        assertMessage(invalid(m -> m.getAsJsonObject("graphs").remove("step")), "step");
        assertMessage(invalid(m -> stepOutput(m, 1).remove("of")), "next/fc.weight", "of");
    }

    @Test
    void refusesUnknownRolesAndDtypes() {
        assertMessage(invalid(m -> tensor(m, 0).addProperty("role", "frozen")), "fc.weight", "frozen");
        assertMessage(invalid(m -> tensor(m, 0).addProperty("dtype", "float16")), "fc.weight", "float16");
        assertMessage(invalid(m -> stepOutput(m, 0).addProperty("role", "penalty")), "loss", "penalty");
        assertMessage(invalid(m -> m.addProperty("runtime", "tflite")), "tflite");
    }

    @Test
    void refusesGraphInputsThatAreNotTensors() {
        assertMessage(invalid(m -> m.getAsJsonObject("graphs").getAsJsonObject("step").getAsJsonArray("inputs")
                .add("conv.bias")), "conv.bias", "tensors");
        assertMessage(invalid(m -> stepOutput(m, 1).addProperty("of", "x.weight")), "x.weight");
    }

    @Test
    void refusesFileNamesWithADirectoryPart() {
        for (String bad : new String[] {"../step.onnx", "a/step.onnx", "..", "", "step onnx", "/etc/passwd"}) {
            ContractException e = invalid(m -> m.getAsJsonArray("files").get(0).getAsJsonObject().addProperty("name", bad));
            assertMessage(e, "file name");
        }
        assertMessage(invalid(m -> m.getAsJsonObject("graphs").getAsJsonObject("step").addProperty("file", "other.onnx")),
                "other.onnx");
    }

    @Test
    void refusesMalformedValues() {
        assertMessage(invalid(m -> m.addProperty("batch_size", 2.5)), "batch_size");
        assertMessage(invalid(m -> m.getAsJsonArray("files").get(0).getAsJsonObject().addProperty("sha256", "ABC")), "sha256");
        assertMessage(invalid(m -> m.getAsJsonArray("tensors").add(m.getAsJsonArray("tensors").get(0))), "twice");
        assertThrows(ContractException.class, () -> Manifest.parse("{not json"));
        assertThrows(ContractException.class, () -> Manifest.parse("[]"));
    }

    @Test
    void theGraphMayOmitGrowth() {
        JsonObject m = TinyModel.manifestJson();
        m.getAsJsonObject("graphs").remove("growth");
        Manifest parsed = Manifest.parse(m.toString());
        assertFalse(parsed.hasGraph("growth"));
        assertThrows(ContractException.class, () -> parsed.graph("growth"));
    }

    @Test
    void parsesTheSharedArtifactsManifest() throws Exception {
        Manifest m = Manifest.parse(Vectors.text(Vectors.artifacts().resolve("manifest.json")));
        assertEquals(Manifest.SCHEMA_VERSION, 2);
        assertTrue(m.hasGraph("step") && m.hasGraph("evaluate"));
        for (String input : m.graph("step").inputs()) {
            assertEquals(input, m.tensor(input).name());
        }
    }

    private static ContractException invalid(Consumer<JsonObject> change) {
        JsonObject m = TinyModel.manifestJson();
        change.accept(m);
        return assertThrows(ContractException.class, () -> Manifest.parse(m.toString()));
    }

    private static void assertMessage(Exception e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "'" + e.getMessage() + "' should mention '" + part + "'");
        }
    }

    private static JsonObject tensor(JsonObject m, int index) {
        return m.getAsJsonArray("tensors").get(index).getAsJsonObject();
    }

    private static JsonObject stepOutput(JsonObject m, int index) {
        JsonArray outs = m.getAsJsonObject("graphs").getAsJsonObject("step").getAsJsonArray("outputs");
        return outs.get(index).getAsJsonObject();
    }
}
