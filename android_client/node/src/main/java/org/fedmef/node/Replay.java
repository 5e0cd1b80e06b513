package org.fedmef.node;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.fedmef.core.contract.ArtifactStore;
import org.fedmef.core.contract.OrtTrainer;
import org.fedmef.core.contract.PartitionDataSource;
import org.fedmef.core.contract.RoundRunner;
import org.fedmef.core.contract.Ticker;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.Npy;
import org.fedmef.core.records.Record;
import org.fedmef.core.records.RecordDict;

/**
 * {@code --replay DIR --out OUT}: answers one instruction stored in files, offline, with the same
 * {@link RoundRunner} a live node uses: to debug a round, to time it and see its memory, or to
 * compare this client with another one ({@code tests/test_java_replay.py} compares it with the
 * Python client on the default model).
 *
 * <p>The instruction directory (records of protocol §1, arrays as in {@code tests/vectors/round/}):
 * <ul>
 *   <li>{@code plan.json}: the {@code plan} record, a JSON object of numbers (integers without a
 *       fraction or exponent become ints), strings and booleans; the manifest is its key
 *       {@code manifest} or else the file {@code manifest.json};</li>
 *   <li>{@code state/<key>.npy}: the {@code state} record ({@code state/v/conv1.npy} is {@code v/conv1});</li>
 *   <li>{@code artifacts/<name>} (optional): the files sent with the instruction ({@code file/<name>}).</li>
 * </ul>
 * The output directory receives the reply the same way, {@code <record>/<key>.npy} for array
 * records ({@code update/v/conv1.npy}) and {@code <record>.json} for the others
 * ({@code metrics.json}), and {@code replay.json}: per repetition (each after a full garbage
 * collection) the seconds, the RSS before and the growth of the peak RSS ({@link ProcessMemory})
 * over the round. A failing instruction writes
 * {@code error.txt}, the reason an error reply would carry, and exits 1.
 */
final class Replay {
    private Replay() {
    }

    static int run(Options o) throws IOException {
        RecordDict instruction = read(o.replay);
        Files.createDirectories(o.out);
        Path store = o.store != null ? o.store : o.out.resolve("store");
        JsonArray repetitions = new JsonArray();
        RecordDict reply = null;
        try (RoundRunner runner = new RoundRunner(PartitionDataSource.open(o.data), new ArtifactStore(store),
                new OrtTrainer(o.threads, o.ortArena), Ticker.system())) {
            for (int i = 0; i < o.repeat; i++) {
                collectGarbage();
                boolean reset = ProcessMemory.resetPeak();
                long rss = ProcessMemory.rss();
                long start = System.nanoTime();
                try {
                    reply = runner.handle(o.messageType, instruction);
                } catch (Exception e) {
                    String reason = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
                    reason = reason.replace('\n', ' ').replace('\r', ' ');
                    Files.write(o.out.resolve("error.txt"), (reason + "\n").getBytes(StandardCharsets.UTF_8));
                    System.err.println("error reply: " + reason);
                    return 1;
                }
                JsonObject r = new JsonObject();
                r.addProperty("seconds", (System.nanoTime() - start) / 1e9);
                r.addProperty("rss_before", rss);
                r.addProperty("peak_growth", reset && rss >= 0 ? ProcessMemory.peak() - rss : -1);
                repetitions.add(r);
            }
        }
        write(reply, o.out);
        JsonObject summary = new JsonObject();
        summary.addProperty("message_type", o.messageType);
        summary.addProperty("threads", o.threads);
        summary.addProperty("ort_arena", o.ortArena);
        summary.add("repetitions", repetitions);
        writeJson(summary, o.out.resolve("replay.json"));
        System.out.println("replayed " + o.messageType + " x" + o.repeat + ": reply in " + o.out);
        return 0;
    }

    /**
     * A full collection, and a moment for the cleaner thread: the direct buffers that fed the previous
     * repetition's tensors are freed only once collected, and would otherwise be freed (or counted)
     * during the next measurement.
     */
    private static void collectGarbage() {
        System.gc();
        try {
            Thread.sleep(200);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The instruction stored in {@code dir}: {@code state}, {@code plan} and, when present, {@code artifacts}. */
    static RecordDict read(Path dir) throws IOException {
        JsonObject json = object(dir.resolve("plan.json"));
        ConfigRecord.Builder plan = ConfigRecord.builder();
        for (Map.Entry<String, JsonElement> e : json.entrySet()) {
            plan.put(e.getKey(), scalar(e.getKey(), e.getValue()));
        }
        Path manifest = dir.resolve("manifest.json");
        if (!json.has("manifest") && Files.isRegularFile(manifest)) {
            plan.put("manifest", new String(Files.readAllBytes(manifest), StandardCharsets.UTF_8));
        }
        RecordDict.Builder content = RecordDict.builder().put("state", ArrayRecord.of(arrays(dir.resolve("state"))))
                .put("plan", plan.build());
        Path artifacts = dir.resolve("artifacts");
        if (Files.isDirectory(artifacts)) {
            ArrayRecord.Builder files = ArrayRecord.builder();
            for (Path file : list(artifacts)) {
                files.put(ArtifactStore.FILE_PREFIX + file.getFileName(), NdArray.ofBytes(Files.readAllBytes(file)));
            }
            content.put("artifacts", files.build());
        }
        return content.build();
    }

    /** Writes {@code reply}: {@code <record>/<key>.npy} for array records, {@code <record>.json} for the others. */
    static void write(RecordDict reply, Path out) throws IOException {
        for (Map.Entry<String, Record> e : reply.asMap().entrySet()) {
            Record record = e.getValue();
            if (record instanceof ArrayRecord) {
                for (Map.Entry<String, NdArray> a : ((ArrayRecord) record).asMap().entrySet()) {
                    Path file = out.resolve(e.getKey()).resolve(relative(a.getKey()) + ".npy");
                    Files.createDirectories(file.getParent());
                    Npy.write(a.getValue(), file);
                }
            } else {
                JsonObject values = new JsonObject();
                if (record instanceof MetricRecord) {
                    MetricRecord m = (MetricRecord) record;
                    for (String key : m.keys()) {
                        values.add(key, json(m.get(key)));
                    }
                } else if (record instanceof ConfigRecord) {
                    ConfigRecord c = (ConfigRecord) record;
                    for (String key : c.keys()) {
                        values.add(key, json(c.get(key)));
                    }
                }
                writeJson(values, out.resolve(e.getKey() + ".json"));
            }
        }
    }

    /** Every {@code .npy} below {@code dir}, keyed by its path relative to {@code dir} without {@code .npy}. */
    private static Map<String, NdArray> arrays(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new IOException(dir + ": no such directory (the instruction's state arrays)");
        }
        List<Path> files = new ArrayList<>();
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.filter(p -> Files.isRegularFile(p) && p.getFileName().toString().endsWith(".npy")).forEach(files::add);
        }
        Map<String, NdArray> out = new TreeMap<>();
        for (Path file : files) {
            String key = dir.relativize(file).toString().replace('\\', '/');
            try {
                out.put(key.substring(0, key.length() - ".npy".length()), Npy.read(file));
            } catch (IllegalArgumentException e) {
                throw new IOException(file + ": " + e.getMessage(), e);
            }
        }
        return out;
    }

    private static List<Path> list(Path dir) throws IOException {
        List<Path> out = new ArrayList<>();
        try (Stream<Path> entries = Files.list(dir)) {
            entries.filter(Files::isRegularFile).forEach(out::add);
        }
        Collections.sort(out);
        return out;
    }

    /** A record key as a relative path: '/'-separated plain segments, never "." or "..". */
    private static String relative(String key) {
        for (String segment : key.split("/", -1)) {
            if (segment.isEmpty() || ".".equals(segment) || "..".equals(segment) || segment.indexOf('\\') >= 0) {
                throw new IllegalArgumentException("reply key '" + key + "' cannot be written as a file path");
            }
        }
        return key;
    }

    private static Object scalar(String key, JsonElement value) {
        if (value.isJsonPrimitive()) {
            JsonPrimitive p = value.getAsJsonPrimitive();
            if (p.isString()) {
                return p.getAsString();
            }
            if (p.isBoolean()) {
                return p.getAsBoolean();
            }
            String text = p.getAsString();
            boolean integral = text.indexOf('.') < 0 && text.indexOf('e') < 0 && text.indexOf('E') < 0;
            return integral ? (Object) p.getAsLong() : (Object) p.getAsDouble();
        }
        throw new IllegalArgumentException("plan.json: '" + key + "' must be a number, string or boolean");
    }

    private static JsonElement json(Object value) {
        if (value instanceof Number) {
            return new JsonPrimitive((Number) value);
        }
        if (value instanceof Boolean) {
            return new JsonPrimitive((Boolean) value);
        }
        if (value instanceof List) {
            JsonArray array = new JsonArray();
            for (Object item : (List<?>) value) {
                array.add(json(item));
            }
            return array;
        }
        if (value instanceof byte[]) {
            JsonArray array = new JsonArray();
            for (byte b : (byte[]) value) {
                array.add(b & 0xFF);
            }
            return array;
        }
        return new JsonPrimitive(String.valueOf(value));
    }

    private static JsonObject object(Path file) throws IOException {
        try {
            JsonElement json = JsonParser.parseString(new String(Files.readAllBytes(file), StandardCharsets.UTF_8));
            if (!json.isJsonObject()) {
                throw new IOException(file + ": expected a JSON object");
            }
            return json.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new IOException(file + " is not JSON: " + e.getMessage(), e);
        }
    }

    private static void writeJson(JsonObject json, Path file) throws IOException {
        String text = new GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create().toJson(json);
        Files.write(file, (text + "\n").getBytes(StandardCharsets.UTF_8));
    }
}
