package org.fedmef.core.codec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import flwr.proto.MessageOuterClass.Metadata;
import flwr.proto.MessageOuterClass.ObjectTree;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.fedmef.core.FleetVectors;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.RecordDict;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Ids and bytes against objects deflated by flwr 1.41 itself (tests/vectors/fleet.py). */
class ObjectCodecTest {
    private static JsonObject vectors;
    private final ObjectCodec codec = new ObjectCodec();

    @BeforeAll
    static void load() throws Exception {
        vectors = FleetVectors.json();
    }

    @Test
    void recordDictObjectsAreFlwrsByteForByte() {
        JsonObject v = vectors.getAsJsonObject("record_dict");
        EncodedObject rd = codec.encodeRecordDict(vectorContent());
        assertEquals(v.get("id").getAsString(), rd.id());
        assertObjects(v.getAsJsonArray("objects"), rd);
    }

    @Test
    void replyMessageHasFlwrsIdAndTree() {
        JsonObject v = vectors.getAsJsonObject("message");
        EncodedObject message = codec.encodeMessage(vectorMetadata().setMessageId("ignored").build(), vectorContent());
        assertEquals(v.get("id").getAsString(), message.id());
        assertEquals(tree(v.getAsJsonObject("tree")), message.tree());
        assertObjects(v.getAsJsonArray("objects"), message);
    }

    @Test
    void errorMessageHasFlwrsId() {
        JsonObject v = vectors.getAsJsonObject("error_message");
        EncodedObject message = codec.encodeErrorMessage(vectorMetadata().build(), v.get("code").getAsInt(),
                v.get("reason").getAsString());
        assertEquals(v.get("id").getAsString(), message.id());
        assertTrue(message.children().isEmpty());
        assertObjects(v.getAsJsonArray("objects"), message);
    }

    @Test
    void decodesFlwrsMessage() throws Exception {
        JsonObject v = vectors.getAsJsonObject("message");
        DecodedMessage decoded = codec.decodeMessage(v.get("id").getAsString(), contents(v.getAsJsonArray("objects")));
        assertFalse(decoded.hasError());
        assertEquals(vectorContent(), decoded.content());
        assertEquals(vectorMetadata().build(), decoded.metadata());
        assertEquals(Arrays.asList("update", "plan", "metrics"), new ArrayList<>(decoded.content().names()));
        ConfigRecord plan = decoded.content().config("plan");
        assertArrayEquals(new byte[] {0, 1, (byte) 0xff}, plan.getBytes("blob"));
        assertEquals("héllo ✓", plan.getString("unicode"));
        assertEquals(0.25, decoded.content().metrics("metrics").getDouble("train-loss"));
    }

    @Test
    void decodesFlwrsErrorMessage() throws Exception {
        JsonObject v = vectors.getAsJsonObject("error_message");
        DecodedMessage decoded = codec.decodeMessage(v.get("id").getAsString(), contents(v.getAsJsonArray("objects")));
        assertTrue(decoded.hasError());
        assertEquals(1, decoded.error().getCode());
        assertEquals("step.onnx: sha256 mismatch", decoded.error().getReason());
        assertNull(decoded.content());
    }

    @Test
    void chunksLargeArraysLikeFlwr() {
        JsonObject big = vectors.getAsJsonObject("big_arrays");
        JsonObject floats = big.getAsJsonObject("floats");
        float[] values = new float[floats.get("n").getAsInt()];
        for (int i = 0; i < values.length; i++) {
            values[i] = i;
        }
        EncodedObject array = codec.encodeArray(NdArray.ofFloats(values));
        assertEquals(floats.get("id").getAsString(), array.id());
        assertEquals(strings(floats.getAsJsonArray("chunk_ids")), ids(array.children()));

        JsonObject zeros = big.getAsJsonObject("zeros");
        EncodedObject zeroArray = codec.encodeArray(NdArray.ofBytes(new byte[zeros.get("n").getAsInt()]));
        assertEquals(zeros.get("id").getAsString(), zeroArray.id());
        assertEquals(strings(zeros.getAsJsonArray("chunk_ids")), ids(zeroArray.children()));
        String body = body(zeroArray);
        assertTrue(body.endsWith("\"arraychunk_ids\": " + zeros.getAsJsonArray("arraychunk_ids").toString()
                .replace(",", ", ") + "}"), body);
    }

    @Test
    void roundTripsChunkedArraysAndSharedChildren() throws Exception {
        ObjectCodec small = new ObjectCodec(100);
        NdArray ones = NdArray.ofFloats(new float[300]);
        RecordDict content = RecordDict.builder()
                .put("a", ArrayRecord.builder().put("x", ones).put("y", ones).build())
                .put("b", ArrayRecord.builder().put("x", ones).put("y", ones).build())
                .put("empty", ConfigRecord.builder().put("list", Collections.emptyList()).build())
                .build();
        EncodedObject message = small.encodeMessage(Metadata.newBuilder().setMessageType("train").build(), content);
        assertEquals(2, message.children().get(0).children().size(), "identical records a, b stored once");
        assertEquals(content, small.decodeMessage(message.id(), bytesOf(message)).content());
    }

    @Test
    void postOrderListsChildrenFirstAndEachObjectOnce() {
        EncodedObject message = codec.encodeMessage(vectorMetadata().build(), vectorContent());
        List<String> seen = new ArrayList<>();
        for (EncodedObject o : message.objectsPostOrder().values()) {
            for (EncodedObject child : o.children()) {
                assertTrue(seen.contains(child.id()), "child before parent");
            }
            assertFalse(seen.contains(o.id()));
            seen.add(o.id());
        }
        assertEquals(message.id(), seen.get(seen.size() - 1));
    }

    @Test
    void rejectsTamperedMissingAndMistypedObjects() {
        EncodedObject message = codec.encodeMessage(vectorMetadata().build(), vectorContent());
        Map<String, byte[]> good = bytesOf(message);
        String rd = message.children().get(0).id();

        Map<String, byte[]> missing = new LinkedHashMap<>(good);
        missing.remove(rd);
        assertThrows(CodecException.class, () -> codec.decodeMessage(message.id(), missing));

        Map<String, byte[]> tampered = new LinkedHashMap<>(good);
        byte[] changed = good.get(rd).clone();
        changed[changed.length - 3] ^= 1;
        tampered.put(rd, changed);
        CodecException e = assertThrows(CodecException.class, () -> codec.decodeMessage(message.id(), tampered));
        assertTrue(e.getMessage().contains("sha256 mismatch"), e.getMessage());

        assertThrows(CodecException.class, () -> codec.decodeMessage(rd, good), "a RecordDict is not a Message");
    }

    @Test
    void malformedObjectsOnlyEverGiveCodecExceptions() {
        EncodedObject message = codec.encodeMessage(vectorMetadata().build(), vectorContent());
        Map<String, byte[]> good = bytesOf(message);
        Random random = new Random(42);
        int rejected = 0;
        for (int round = 0; round < 3000; round++) {
            List<EncodedObject> all = new ArrayList<>(message.objectsPostOrder().values());
            EncodedObject victim = all.get(random.nextInt(all.size()));
            byte[] mutated = mutate(victim.content().toByteArray(), random);
            Map<String, byte[]> contents = new LinkedHashMap<>(good);
            String root = wrapAsMessage(contents, victim.type(), put(contents, mutated));
            try {
                codec.decodeMessage(root, contents);
            } catch (CodecException expected) {
                rejected++;
            } catch (RuntimeException | StackOverflowError other) {
                fail("decoding a mutated " + victim.type() + " threw " + other, other);
            }
        }
        assertTrue(rejected > 2000, "most mutations are rejected: " + rejected);
    }

    // ---- vector input -------------------------------------------------------------------

    static RecordDict vectorContent() {
        JsonObject v = vectors.getAsJsonObject("record_dict");
        ArrayRecord.Builder arrays = ArrayRecord.builder();
        for (Map.Entry<String, JsonElement> e : v.getAsJsonObject("arrays").entrySet()) {
            JsonObject a = e.getValue().getAsJsonObject();
            JsonArray dims = a.getAsJsonArray("shape");
            long[] shape = new long[dims.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = dims.get(i).getAsLong();
            }
            arrays.put(e.getKey(), new NdArray(a.get("dtype").getAsString(), shape, FleetVectors.hex(a.get("data").getAsString())));
        }
        JsonObject config = v.getAsJsonObject("config");
        JsonObject bytesLists = v.getAsJsonObject("config_bytes_lists");
        ConfigRecord.Builder plan = ConfigRecord.builder();
        for (JsonElement keyElement : v.getAsJsonArray("config_order")) {
            String key = keyElement.getAsString();
            if (bytesLists.has(key)) {
                List<byte[]> list = new ArrayList<>();
                for (JsonElement b : bytesLists.getAsJsonArray(key)) {
                    list.add(FleetVectors.hex(b.getAsString()));
                }
                plan.put(key, list);
                continue;
            }
            JsonObject item = config.getAsJsonObject(key);
            JsonElement value = item.get("value");
            plan.put(key, "bytes".equals(item.get("type").getAsString()) ? FleetVectors.hex(value.getAsString()) : scalarOrList(value));
        }
        MetricRecord.Builder metrics = MetricRecord.builder();
        for (Map.Entry<String, JsonElement> e : v.getAsJsonObject("metrics").entrySet()) {
            metrics.put(e.getKey(), scalarOrList(e.getValue()));
        }
        return RecordDict.builder().put("update", arrays.build()).put("plan", plan.build())
                .put("metrics", metrics.build()).build();
    }

    static Metadata.Builder vectorMetadata() {
        JsonObject m = vectors.getAsJsonObject("metadata");
        return Metadata.newBuilder()
                .setRunId(Long.parseUnsignedLong(m.get("run_id").getAsString()))
                .setSrcNodeId(Long.parseUnsignedLong(m.get("src_node_id").getAsString()))
                .setDstNodeId(m.get("dst_node_id").getAsLong())
                .setReplyToMessageId(m.get("reply_to_message_id").getAsString())
                .setGroupId(m.get("group_id").getAsString())
                .setCreatedAt(m.get("created_at").getAsDouble())
                .setTtl(m.get("ttl").getAsDouble())
                .setMessageType(m.get("message_type").getAsString())
                .setDstTaskId(Long.parseUnsignedLong(m.get("dst_task_id").getAsString()));
    }

    private static Object scalarOrList(JsonElement value) {
        if (value.isJsonArray()) {
            List<Object> list = new ArrayList<>();
            for (JsonElement e : value.getAsJsonArray()) {
                list.add(scalarOrList(e));
            }
            return list;
        }
        if (value.getAsJsonPrimitive().isBoolean()) {
            return value.getAsBoolean();
        }
        if (value.getAsJsonPrimitive().isString()) {
            return value.getAsString();
        }
        String text = value.getAsString();
        return text.contains(".") || text.contains("e") ? (Object) value.getAsDouble() : (Object) value.getAsLong();
    }

    // ---- helpers --------------------------------------------------------------------------

    private static void assertObjects(JsonArray expected, EncodedObject root) {
        Map<String, EncodedObject> actual = root.objectsPostOrder();
        assertEquals(expected.size(), actual.size());
        for (JsonElement e : expected) {
            JsonObject o = e.getAsJsonObject();
            EncodedObject mine = actual.get(o.get("id").getAsString());
            if (mine == null) {
                fail("missing " + o.get("type").getAsString() + " " + o.get("id").getAsString());
            }
            assertEquals(o.get("type").getAsString(), mine.type());
            assertArrayEquals(Base64.getDecoder().decode(o.get("content").getAsString()), mine.content().toByteArray());
        }
    }

    private static Map<String, byte[]> contents(JsonArray objects) {
        Map<String, byte[]> out = new LinkedHashMap<>();
        for (JsonElement e : objects) {
            out.put(e.getAsJsonObject().get("id").getAsString(),
                    Base64.getDecoder().decode(e.getAsJsonObject().get("content").getAsString()));
        }
        return out;
    }

    private static Map<String, byte[]> bytesOf(EncodedObject root) {
        Map<String, byte[]> out = new LinkedHashMap<>();
        for (EncodedObject o : root.objectsPostOrder().values()) {
            out.put(o.id(), o.content().toByteArray());
        }
        return out;
    }

    private static ObjectTree tree(JsonObject json) {
        ObjectTree.Builder b = ObjectTree.newBuilder().setObjectId(json.get("id").getAsString());
        for (JsonElement child : json.getAsJsonArray("children")) {
            b.addChildren(tree(child.getAsJsonObject()));
        }
        return b.build();
    }

    private static List<String> strings(JsonArray array) {
        List<String> out = new ArrayList<>();
        for (JsonElement e : array) {
            out.add(e.getAsString());
        }
        return out;
    }

    private static List<String> ids(List<EncodedObject> objects) {
        List<String> out = new ArrayList<>();
        for (EncodedObject o : objects) {
            out.add(o.id());
        }
        return out;
    }

    private static String body(EncodedObject o) {
        byte[] c = o.content().toByteArray();
        int zero = 0;
        while (c[zero] != 0) {
            zero++;
        }
        return new String(c, zero + 1, c.length - zero - 1, StandardCharsets.UTF_8);
    }

    private static byte[] mutate(byte[] content, Random random) {
        byte[] out = content.clone();
        switch (random.nextInt(4)) {
            case 0: // flip bytes
                for (int i = 0, n = 1 + random.nextInt(4); i < n; i++) {
                    out[random.nextInt(out.length)] ^= (byte) (1 + random.nextInt(255));
                }
                return out;
            case 1: // truncate
                return Arrays.copyOf(out, random.nextInt(out.length));
            case 2: // flip inside the head (first 80 bytes)
                out[random.nextInt(Math.min(80, out.length))] = (byte) random.nextInt(256);
                return out;
            default: // garbage
                byte[] garbage = new byte[random.nextInt(200)];
                random.nextBytes(garbage);
                return garbage;
        }
    }

    private static String put(Map<String, byte[]> contents, byte[] content) {
        String id = ObjectBytes.sha256Hex(content);
        contents.put(id, content);
        return id;
    }

    private static String object(Map<String, byte[]> contents, String type, String child, String body) {
        List<String> children = child == null ? Collections.<String>emptyList() : Collections.singletonList(child);
        return put(contents, ObjectBytes.build(type, children, body.getBytes(StandardCharsets.UTF_8)));
    }

    /** Builds the parents a (mutated) object of {@code type} needs to be reached from a Message. */
    private static String wrapAsMessage(Map<String, byte[]> contents, String type, String id) {
        switch (type) {
            case "Message":
                return id;
            case "RecordDict":
                return put(contents, ObjectBytes.build("Message", Collections.singletonList(id),
                        flwr.proto.MessageOuterClass.Message.getDefaultInstance().toByteArray()));
            case "ArrayChunk":
                id = object(contents, "Array", id,
                        "{\"dtype\": \"float32\", \"shape\": [3], \"stype\": \"numpy.ndarray\", \"arraychunk_ids\": [0]}");
                // fall through
            case "Array":
                id = object(contents, "ArrayRecord", id, "{\"a\": \"" + id + "\"}");
                // fall through
            default: // a record
                id = object(contents, "RecordDict", id, "{\"r\": \"" + id + "\"}");
                return wrapAsMessage(contents, "RecordDict", id);
        }
    }
}
