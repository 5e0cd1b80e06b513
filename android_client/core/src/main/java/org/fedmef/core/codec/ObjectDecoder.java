package org.fedmef.core.codec;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.protobuf.InvalidProtocolBufferException;
import flwr.proto.MessageOuterClass;
import flwr.proto.Recorddict;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.Npy;
import org.fedmef.core.records.Record;
import org.fedmef.core.records.RecordDict;

/**
 * Inflates a pulled Message from its objects (flwr 1.41's {@code inflate()} methods), checking
 * on the way every object's SHA-256 against its id, every head against its body, and that the
 * ids a body refers to are exactly the children its head lists. Anything wrong is a
 * {@link CodecException} naming the object.
 */
final class ObjectDecoder {
    private final Map<String, byte[]> contents;
    private final Map<String, ObjectBytes.Parts> verified = new HashMap<>();
    private final Map<String, NdArray> arrays = new HashMap<>();

    ObjectDecoder(Map<String, byte[]> contents) {
        this.contents = contents;
    }

    DecodedMessage message(String rootId) throws CodecException {
        ObjectBytes.Parts root = load(rootId, "Message");
        MessageOuterClass.Message body;
        try {
            body = MessageOuterClass.Message.parseFrom(root.body);
        } catch (InvalidProtocolBufferException e) {
            throw new CodecException("Message " + rootId + ": bad protobuf body", e);
        }
        if (root.children.size() > 1) {
            throw new CodecException("Message " + rootId + " has " + root.children.size() + " children, expected 0 or 1");
        }
        if (root.children.isEmpty()) {
            if (!body.hasError()) {
                throw new CodecException("Message " + rootId + " has neither content nor error");
            }
            return new DecodedMessage(body.getMetadata(), body.getError(), null);
        }
        return new DecodedMessage(body.getMetadata(), body.hasError() ? body.getError() : null,
                recordDict(root.children.get(0)));
    }

    RecordDict recordDict(String id) throws CodecException {
        ObjectBytes.Parts parts = load(id, "RecordDict");
        RecordDict.Builder out = RecordDict.builder();
        for (Map.Entry<String, String> e : references(id, parts).entrySet()) {
            out.put(e.getKey(), record(e.getValue()));
        }
        return out.build();
    }

    private Record record(String id) throws CodecException {
        ObjectBytes.Parts parts = load(id, null);
        try {
            switch (parts.type) {
                case "ArrayRecord":
                    return arrayRecord(id, parts);
                case "ConfigRecord":
                    noChildren(id, parts);
                    return RecordProtos.fromProto(Recorddict.ConfigRecord.parseFrom(parts.body));
                case "MetricRecord":
                    noChildren(id, parts);
                    return RecordProtos.fromProto(Recorddict.MetricRecord.parseFrom(parts.body));
                default:
                    throw new CodecException("object " + id + " is a " + parts.type + ", not a record");
            }
        } catch (InvalidProtocolBufferException | IllegalArgumentException e) {
            throw new CodecException(parts.type + " " + id + ": " + e.getMessage(), e);
        }
    }

    private ArrayRecord arrayRecord(String id, ObjectBytes.Parts parts) throws CodecException {
        ArrayRecord.Builder out = ArrayRecord.builder();
        for (Map.Entry<String, String> e : references(id, parts).entrySet()) {
            out.put(e.getKey(), array(e.getValue()));
        }
        return out.build();
    }

    private NdArray array(String id) throws CodecException {
        NdArray cached = arrays.get(id);
        if (cached != null) {
            return cached;
        }
        ObjectBytes.Parts parts = load(id, "Array");
        JsonObject meta = json(id, parts.body);
        String dtype = string(id, meta, "dtype");
        String stype = string(id, meta, "stype");
        if (!"numpy.ndarray".equals(stype)) {
            throw new CodecException("Array " + id + ": unsupported stype '" + stype + "'");
        }
        JsonElement chunkIds = meta.get("arraychunk_ids");
        if (chunkIds == null || !chunkIds.isJsonArray()) {
            throw new CodecException("Array " + id + ": no arraychunk_ids list");
        }
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        Set<Integer> used = new HashSet<>();
        for (JsonElement index : chunkIds.getAsJsonArray()) {
            int i = integer(id, index, parts.children.size());
            used.add(i);
            byte[] chunk = load(parts.children.get(i), "ArrayChunk").body;
            data.write(chunk, 0, chunk.length);
        }
        if (used.size() != parts.children.size()) {
            throw new CodecException("Array " + id + ": arraychunk_ids do not use every child");
        }
        NdArray array;
        try {
            array = Npy.read(data.toByteArray());
        } catch (IllegalArgumentException | ArithmeticException e) {
            throw new CodecException("Array " + id + ": " + e.getMessage(), e);
        }
        if (!array.dtype().equals(dtype) || !Arrays.equals(array.shape(), shape(id, meta))) {
            throw new CodecException("Array " + id + ": metadata says " + dtype + " " + meta.get("shape")
                    + ", .npy holds " + array);
        }
        arrays.put(id, array);
        return array;
    }

    /** The JSON {key: child id} body of a RecordDict/ArrayRecord; its ids must be the head's children. */
    private Map<String, String> references(String id, ObjectBytes.Parts parts) throws CodecException {
        Map<String, String> refs = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : json(id, parts.body).entrySet()) {
            JsonElement v = e.getValue();
            if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
                throw new CodecException(parts.type + " " + id + ": entry '" + e.getKey() + "' is not an object id");
            }
            refs.put(e.getKey(), v.getAsString());
        }
        if (!new HashSet<>(refs.values()).equals(new HashSet<>(parts.children))) {
            throw new CodecException(parts.type + " " + id + ": body refers to " + new HashSet<>(refs.values())
                    + " but head lists children " + parts.children);
        }
        return refs;
    }

    /** The object's parts, after checking its id and (unless null) its type. */
    private ObjectBytes.Parts load(String id, String expectedType) throws CodecException {
        ObjectBytes.Parts parts = verified.get(id);
        if (parts == null) {
            byte[] content = contents.get(id);
            if (content == null) {
                throw new CodecException("object " + id + " is missing");
            }
            String actual = ObjectBytes.sha256Hex(content);
            if (!actual.equals(id)) {
                throw new CodecException("object " + id + ": sha256 mismatch, content hashes to " + actual);
            }
            parts = ObjectBytes.parse(content);
            verified.put(id, parts);
        }
        if (expectedType != null && !expectedType.equals(parts.type)) {
            throw new CodecException("object " + id + " is a " + parts.type + ", expected " + expectedType);
        }
        return parts;
    }

    private static void noChildren(String id, ObjectBytes.Parts parts) throws CodecException {
        if (!parts.children.isEmpty()) {
            throw new CodecException(parts.type + " " + id + " must not have children");
        }
    }

    private static JsonObject json(String id, byte[] body) throws CodecException {
        try {
            JsonElement e = JsonParser.parseString(new String(body, StandardCharsets.UTF_8));
            if (!e.isJsonObject()) {
                throw new CodecException("object " + id + ": body is not a JSON object");
            }
            return e.getAsJsonObject();
        } catch (JsonParseException | IllegalStateException e) {
            throw new CodecException("object " + id + ": bad JSON body", e);
        }
    }

    private static String string(String id, JsonObject meta, String key) throws CodecException {
        JsonElement v = meta.get(key);
        if (v == null || !v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
            throw new CodecException("Array " + id + ": no string '" + key + "'");
        }
        return v.getAsString();
    }

    private static long[] shape(String id, JsonObject meta) throws CodecException {
        JsonElement v = meta.get("shape");
        if (v == null || !v.isJsonArray()) {
            throw new CodecException("Array " + id + ": no shape list");
        }
        JsonArray dims = v.getAsJsonArray();
        long[] shape = new long[dims.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = integer(id, dims.get(i), Integer.MAX_VALUE);
        }
        return shape;
    }

    private static int integer(String id, JsonElement e, int bound) throws CodecException {
        try {
            long v = e.getAsJsonPrimitive().getAsBigDecimal().longValueExact();
            if (v < 0 || v >= bound) {
                throw new CodecException("Array " + id + ": index " + v + " out of range");
            }
            return (int) v;
        } catch (IllegalStateException | ArithmeticException | NumberFormatException | UnsupportedOperationException e2) {
            throw new CodecException("Array " + id + ": not an integer: " + e, e2);
        }
    }
}
