package org.fedmef.core.codec;

import flwr.proto.ErrorOuterClass.Error;
import flwr.proto.MessageOuterClass.Metadata;
import org.fedmef.core.records.RecordDict;

/**
 * A Message inflated from its objects: the metadata and error stored in the Message object's
 * body (whose {@code message_id} is empty by construction) and the content, absent when the
 * message carries an error.
 */
public final class DecodedMessage {
    private final Metadata metadata;
    private final Error error;
    private final RecordDict content;

    DecodedMessage(Metadata metadata, Error error, RecordDict content) {
        this.metadata = metadata;
        this.error = error;
        this.content = content;
    }

    /** The metadata from the object body ({@code message_id} is "": the id is the object id). */
    public Metadata metadata() {
        return metadata;
    }

    /** Whether the message carries an error instead of content. */
    public boolean hasError() {
        return error != null;
    }

    /** The error, or null. */
    public Error error() {
        return error;
    }

    /** The content, or null for an error message. */
    public RecordDict content() {
        return content;
    }
}
