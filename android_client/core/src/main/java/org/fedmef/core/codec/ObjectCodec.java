package org.fedmef.core.codec;

import flwr.proto.MessageOuterClass.Metadata;
import java.util.Map;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.Record;
import org.fedmef.core.records.RecordDict;

/**
 * Flower 1.41's "inflatable object" encoding of messages and records, the way content travels
 * over the Fleet API: a Message object whose child is a RecordDict, whose children are records;
 * ArrayRecords hold Arrays, Arrays hold ArrayChunks (slices of the array's {@code .npy} bytes of
 * at most 5 MiB). Ids are SHA-256 of the object bytes and equal flwr's own for the same content.
 */
public final class ObjectCodec {
    /** flwr's {@code FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE} default. */
    public static final int DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024;

    private final ObjectEncoder encoder;

    /** A codec with flwr's default chunk size. */
    public ObjectCodec() {
        this(DEFAULT_CHUNK_SIZE);
    }

    /** A codec with another chunk size (must match the SuperLink's for identical ids). */
    public ObjectCodec(int chunkSize) {
        if (chunkSize <= 0) {
            throw new IllegalArgumentException("chunk size must be positive");
        }
        this.encoder = new ObjectEncoder(chunkSize);
    }

    /**
     * A Message with content. The metadata's {@code message_id} is ignored (written as "");
     * the message id is the returned object's id.
     */
    public EncodedObject encodeMessage(Metadata metadata, RecordDict content) {
        return encoder.message(metadata, content);
    }

    /** A Message carrying an error instead of content (no children). */
    public EncodedObject encodeErrorMessage(Metadata metadata, int code, String reason) {
        return encoder.errorMessage(metadata, code, reason);
    }

    /** A RecordDict and everything below it. */
    public EncodedObject encodeRecordDict(RecordDict dict) {
        return encoder.recordDict(dict);
    }

    /** One record and everything below it. */
    public EncodedObject encodeRecord(Record record) {
        return encoder.record(record);
    }

    /** One Array and its chunks. */
    public EncodedObject encodeArray(NdArray array) {
        return encoder.array(array);
    }

    /**
     * Inflates a Message from its objects.
     *
     * @param rootId   the Message's object id (= its message id)
     * @param contents object bytes by id; every object of the tree must be there
     * @throws CodecException when an object is missing, does not hash to its id, or is malformed
     */
    public DecodedMessage decodeMessage(String rootId, Map<String, byte[]> contents) throws CodecException {
        return new ObjectDecoder(contents).message(rootId);
    }
}
