package org.fedmef.node;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.Npy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --replay} on the shared round of {@code tests/vectors/} (an extrusion and adjustment
 * round of the tiny model, exported by {@code make vectors}): the reply written to the output
 * directory is the reference's, for train and evaluate, and a corrupted artifact is an error
 * naming the file. The vectors directory comes from the system property {@code fedmef.vectors}.
 */
class ReplayTest {
    @TempDir
    Path tmp;

    private static Path vectors(String relative) {
        String property = System.getProperty("fedmef.vectors");
        Path path = (property == null || property.isEmpty() ? Paths.get("../../tests/vectors") : Paths.get(property))
                .resolve(relative);
        if (!Files.exists(path)) {
            fail("shared test vector " + path.toAbsolutePath().normalize() + " is missing (artifacts/ is generated: "
                    + "run `make vectors`)");
        }
        return path;
    }

    /** The shared round as an instruction directory: plan.json, manifest.json, state/, artifacts/. */
    private Path instruction() throws IOException {
        Path dir = tmp.resolve("instruction");
        Files.createDirectories(dir.resolve("artifacts"));
        Files.copy(vectors("round/plan.json"), dir.resolve("plan.json"));
        Path artifacts = vectors("artifacts");
        Files.copy(artifacts.resolve("manifest.json"), dir.resolve("manifest.json"));
        for (String file : new String[] {"step.onnx", "growth.onnx", "evaluate.onnx"}) {
            Files.copy(artifacts.resolve(file), dir.resolve("artifacts").resolve(file));
        }
        Path state = vectors("round/state");
        for (Map.Entry<String, Path> e : npyFiles(state).entrySet()) {
            Path target = dir.resolve("state").resolve(e.getKey() + ".npy");
            Files.createDirectories(target.getParent());
            Files.copy(e.getValue(), target);
        }
        return dir;
    }

    private int replay(Path instruction, Path out, String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("--replay", instruction.toString(), "--out", out.toString(),
                "--data", vectors("round/data").toString(), "--threads", "1"));
        args.addAll(List.of(extra));
        return Main.run(Options.parse(args.toArray(new String[0])));
    }

    @Test
    void aReplayedTrainRoundWritesTheReferenceUpdateAndItsCost() throws Exception {
        Path out = tmp.resolve("out");
        assertEquals(0, replay(instruction(), out, "--repeat", "2"));
        Map<String, Path> expected = npyFiles(vectors("round/expected/update"));
        Map<String, Path> written = npyFiles(out.resolve("update"));
        assertEquals(expected.keySet(), written.keySet());
        for (Map.Entry<String, Path> e : expected.entrySet()) {
            NdArray want = Npy.read(e.getValue());
            NdArray got = Npy.read(written.get(e.getKey()));
            assertEquals(want.dtype(), got.dtype(), e.getKey());
            assertArrayEquals(want.shape(), got.shape(), e.getKey());
            if (e.getKey().startsWith("gi/")) {
                assertArrayEquals(want.toInts(), got.toInts(), e.getKey());
            } else {
                assertArrayEquals(want.toFloats(), got.toFloats(), 1e-5f, e.getKey());
            }
        }
        JsonObject metrics = json(out.resolve("metrics.json"));
        JsonObject reference = json(vectors("round/expected/metrics.json"));
        assertEquals(reference.get("num-examples").getAsLong(), metrics.get("num-examples").getAsLong());
        double loss = reference.get("train-loss").getAsDouble();
        assertEquals(loss, metrics.get("train-loss").getAsDouble(), 1e-5 * loss);
        JsonArray repetitions = json(out.resolve("replay.json")).getAsJsonArray("repetitions");
        assertEquals(2, repetitions.size());
        for (int i = 0; i < 2; i++) {
            JsonObject r = repetitions.get(i).getAsJsonObject();
            assertTrue(r.get("seconds").getAsDouble() > 0, r.toString());
            assertTrue(r.get("rss_before").getAsLong() > 0 && r.get("peak_growth").getAsLong() >= 0, r.toString());
        }
        assertTrue(Files.isDirectory(out.resolve("store")), "the artifacts were stored under OUT/store");
    }

    @Test
    void aReplayedEvaluationMatchesTheReferenceWithoutTheArena() throws Exception {
        Path out = tmp.resolve("out");
        assertEquals(0, replay(instruction(), out, "--message-type", "evaluate", "--ort-arena", "off"));
        JsonObject metrics = json(out.resolve("metrics.json"));
        JsonObject reference = json(vectors("round/expected/evaluate.json"));
        assertEquals(reference.get("num-examples").getAsLong(), metrics.get("num-examples").getAsLong());
        assertEquals(reference.get("loss").getAsDouble(), metrics.get("loss").getAsDouble(), 1e-5);
        assertEquals(reference.get("accuracy").getAsDouble(), metrics.get("accuracy").getAsDouble(), 1e-12);
        assertEquals(false, json(out.resolve("replay.json")).get("ort_arena").getAsBoolean());
    }

    @Test
    void aCorruptedArtifactIsTheErrorReplyNamingTheFile() throws Exception {
        Path instruction = instruction();
        Path step = instruction.resolve("artifacts/step.onnx");
        byte[] bytes = Files.readAllBytes(step);
        bytes[bytes.length / 2] ^= 0x55;
        Files.write(step, bytes);
        Path out = tmp.resolve("out");
        assertEquals(1, replay(instruction, out));
        String reason = new String(Files.readAllBytes(out.resolve("error.txt")), StandardCharsets.UTF_8);
        assertTrue(reason.startsWith("step.onnx: sha256 mismatch, expected "), reason);
        assertTrue(!Files.exists(out.resolve("update")), "no reply written");
    }

    @Test
    void aPlanWithAnObjectValueIsRefusedNamingTheKey() throws Exception {
        Path instruction = instruction();
        Files.write(instruction.resolve("plan.json"), "{\"round\": 1, \"lr\": {\"x\": 1}}".getBytes(StandardCharsets.UTF_8));
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> Replay.read(instruction));
        assertEquals("plan.json: 'lr' must be a number, string or boolean", e.getMessage());
    }

    private static JsonObject json(Path file) throws IOException {
        return JsonParser.parseString(new String(Files.readAllBytes(file), StandardCharsets.UTF_8)).getAsJsonObject();
    }

    /** Every .npy below dir by key (relative path without .npy). */
    private static Map<String, Path> npyFiles(Path dir) throws IOException {
        Map<String, Path> out = new TreeMap<>();
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.filter(p -> p.toString().endsWith(".npy")).forEach(p -> {
                String key = dir.relativize(p).toString().replace('\\', '/');
                out.put(key.substring(0, key.length() - 4), p);
            });
        }
        return out;
    }
}
