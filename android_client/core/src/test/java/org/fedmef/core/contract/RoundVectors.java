package org.fedmef.core.contract;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.NdArray;

/**
 * The shared round vectors ({@code tests/vectors/round/} + the generated {@code artifacts/}) as
 * records: the instruction's state and plan (with the manifest), the artifacts record, and the
 * expected update, read from the {@code .npy} trees ({@code state/v/conv1.npy} is key {@code v/conv1}).
 */
final class RoundVectors {
    private RoundVectors() {
    }

    static Path round() {
        return Vectors.require("round");
    }

    /** Every {@code .npy} below {@code dir}, keyed by its relative path without {@code .npy}, sorted. */
    static Map<String, NdArray> tree(Path dir) throws IOException {
        Map<String, NdArray> out = new TreeMap<>();
        List<Path> files = new ArrayList<>();
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.filter(p -> p.toString().endsWith(".npy")).forEach(files::add);
        }
        for (Path f : files) {
            String key = dir.relativize(f).toString().replace('\\', '/');
            out.put(key.substring(0, key.length() - 4), Vectors.npy(f));
        }
        return out;
    }

    static ArrayRecord state() throws IOException {
        return ArrayRecord.of(tree(Vectors.require("round/state")));
    }

    static String manifestJson() throws IOException {
        return Vectors.text(Vectors.artifacts().resolve("manifest.json"));
    }

    /** {@code plan.json} (ints as Long, floats as Double) plus the artifacts' manifest. */
    static ConfigRecord plan() throws IOException {
        JsonObject json = Vectors.json("round/plan.json").getAsJsonObject();
        ConfigRecord.Builder b = ConfigRecord.builder();
        for (Map.Entry<String, JsonElement> e : json.entrySet()) {
            JsonPrimitive p = e.getValue().getAsJsonPrimitive();
            if (p.isString()) {
                b.put(e.getKey(), p.getAsString());
            } else if (p.isBoolean()) {
                b.put(e.getKey(), p.getAsBoolean());
            } else {
                String text = p.toString();
                boolean integral = !text.contains(".") && !text.contains("e") && !text.contains("E");
                b.put(e.getKey(), integral ? (Object) p.getAsLong() : (Object) p.getAsDouble());
            }
        }
        return b.put(Plan.MANIFEST, manifestJson()).build();
    }

    /** {@code file/<name>} for every file of the artifacts' manifest. */
    static ArrayRecord artifacts() throws IOException {
        Manifest manifest = Manifest.parse(manifestJson());
        ArrayRecord.Builder b = ArrayRecord.builder();
        for (Manifest.FileEntry f : manifest.files()) {
            b.put(ArtifactStore.FILE_PREFIX + f.name(),
                    NdArray.ofBytes(Files.readAllBytes(Vectors.artifacts().resolve(f.name()))));
        }
        return b.build();
    }

    static Map<String, NdArray> expectedUpdate() throws IOException {
        return Collections.unmodifiableMap(tree(Vectors.require("round/expected/update")));
    }
}
