package org.fedmef.core.codec;

import flwr.proto.ErrorOuterClass;
import flwr.proto.MessageOuterClass;
import flwr.proto.MessageOuterClass.Metadata;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.Npy;
import org.fedmef.core.records.Record;
import org.fedmef.core.records.RecordDict;

/**
 * Deflates records and messages into Flower 1.41 objects, as flwr's {@code deflate()} methods do
 * ({@code flwr/app/message/*.py}): same bodies, same child order, hence the same ids.
 */
final class ObjectEncoder {
    private final int chunkSize;

    ObjectEncoder(int chunkSize) {
        this.chunkSize = chunkSize;
    }

    /** A Message object with content: body = proto Message{metadata with message_id ""}. */
    EncodedObject message(Metadata metadata, RecordDict content) {
        EncodedObject child = recordDict(content);
        byte[] body = MessageOuterClass.Message.newBuilder()
                .setMetadata(metadata.toBuilder().setMessageId(""))
                .build().toByteArray();
        return object("Message", oneChild(child), body);
    }

    /** A Message object carrying an error: no children; body = proto Message{metadata, error}. */
    EncodedObject errorMessage(Metadata metadata, int code, String reason) {
        byte[] body = MessageOuterClass.Message.newBuilder()
                .setMetadata(metadata.toBuilder().setMessageId(""))
                .setError(ErrorOuterClass.Error.newBuilder().setCode(code).setReason(reason == null ? "" : reason))
                .build().toByteArray();
        return object("Message", new ArrayList<EncodedObject>(), body);
    }

    /** RecordDict: body = JSON {name: record id}. */
    EncodedObject recordDict(RecordDict dict) {
        Map<String, EncodedObject> refs = new LinkedHashMap<>();
        for (Map.Entry<String, Record> e : dict.asMap().entrySet()) {
            refs.put(e.getKey(), record(e.getValue()));
        }
        return keyed("RecordDict", refs);
    }

    EncodedObject record(Record record) {
        if (record instanceof ArrayRecord) {
            return arrayRecord((ArrayRecord) record);
        } else if (record instanceof ConfigRecord) {
            return object("ConfigRecord", new ArrayList<EncodedObject>(),
                    RecordProtos.toProto((ConfigRecord) record).toByteArray());
        } else if (record instanceof MetricRecord) {
            return object("MetricRecord", new ArrayList<EncodedObject>(),
                    RecordProtos.toProto((MetricRecord) record).toByteArray());
        }
        throw new IllegalArgumentException("unknown record type " + record.getClass().getName());
    }

    /** ArrayRecord: body = JSON {name: array id}. */
    EncodedObject arrayRecord(ArrayRecord record) {
        Map<String, EncodedObject> refs = new LinkedHashMap<>();
        for (Map.Entry<String, NdArray> e : record.asMap().entrySet()) {
            refs.put(e.getKey(), array(e.getValue()));
        }
        return keyed("ArrayRecord", refs);
    }

    /**
     * Array: the data is the array's {@code .npy} file, cut into chunks of at most
     * {@code chunkSize} bytes; children are the unique chunks, and {@code arraychunk_ids} lists
     * for every slice the index of its chunk among the children.
     */
    EncodedObject array(NdArray array) {
        byte[] npy = Npy.write(array);
        List<EncodedObject> unique = new ArrayList<>();
        Map<String, Integer> index = new LinkedHashMap<>();
        List<Integer> order = new ArrayList<>();
        for (int start = 0; start < npy.length; start += chunkSize) {
            byte[] slice = Arrays.copyOfRange(npy, start, Math.min(npy.length, start + chunkSize));
            EncodedObject chunk = object("ArrayChunk", new ArrayList<EncodedObject>(), slice);
            if (!index.containsKey(chunk.id())) {
                index.put(chunk.id(), unique.size());
                unique.add(chunk);
            }
            order.add(index.get(chunk.id()));
        }
        String meta = "{\"dtype\": " + PyJson.quote(array.dtype())
                + ", \"shape\": " + PyJson.numbers(array.shape())
                + ", \"stype\": \"numpy.ndarray\""
                + ", \"arraychunk_ids\": " + PyJson.numbers(order) + "}";
        return object("Array", unique, utf8(meta));
    }

    /** RecordDict / ArrayRecord: JSON {key: child id}; children = unique children, first-seen order. */
    private EncodedObject keyed(String type, Map<String, EncodedObject> refs) {
        Map<String, String> ids = new LinkedHashMap<>();
        Map<String, EncodedObject> unique = new LinkedHashMap<>();
        for (Map.Entry<String, EncodedObject> e : refs.entrySet()) {
            ids.put(e.getKey(), e.getValue().id());
            if (!unique.containsKey(e.getValue().id())) {
                unique.put(e.getValue().id(), e.getValue());
            }
        }
        return object(type, new ArrayList<>(unique.values()), utf8(PyJson.stringMap(ids)));
    }

    private static EncodedObject object(String type, List<EncodedObject> children, byte[] body) {
        List<String> ids = new ArrayList<>(children.size());
        for (EncodedObject c : children) {
            ids.add(c.id());
        }
        return new EncodedObject(type, ObjectBytes.build(type, ids, body), children);
    }

    private static List<EncodedObject> oneChild(EncodedObject child) {
        List<EncodedObject> list = new ArrayList<>(1);
        list.add(child);
        return list;
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
