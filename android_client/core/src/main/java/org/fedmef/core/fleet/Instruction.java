package org.fedmef.core.fleet;

import flwr.proto.MessageOuterClass.Metadata;
import org.fedmef.core.records.RecordDict;

/**
 * A message pulled from the SuperLink: its metadata (what a reply needs) and its content.
 *
 * <p>When the content could not be inflated (a missing or corrupt object), {@link #content()} is
 * null and {@link #decodeError()} says why; the node answers such an instruction with an error
 * reply instead of dropping it.
 */
public final class Instruction {
    private final Metadata metadata;
    private final RecordDict content;
    private final String decodeError;
    private final long receivedAtMillis;

    Instruction(Metadata metadata, RecordDict content, String decodeError, long receivedAtMillis) {
        this.metadata = metadata;
        this.content = content;
        this.decodeError = decodeError;
        this.receivedAtMillis = receivedAtMillis;
    }

    /**
     * An instruction rebuilt from its saved metadata (message id included), so a reply computed
     * before the process died can still be pushed with {@link FleetClient#pushReply}.
     */
    public static Instruction restore(Metadata metadata, RecordDict content, long receivedAtMillis) {
        return new Instruction(metadata, content, null, receivedAtMillis);
    }

    public long runId() {
        return metadata.getRunId();
    }

    public String messageId() {
        return metadata.getMessageId();
    }

    public String messageType() {
        return metadata.getMessageType();
    }

    public String groupId() {
        return metadata.getGroupId();
    }

    /** Seconds since the epoch (the server's clock). */
    public double createdAt() {
        return metadata.getCreatedAt();
    }

    /** Seconds the instruction stays valid after {@link #createdAt()}. */
    public double ttl() {
        return metadata.getTtl();
    }

    /** The node the instruction was sent to: this node. */
    public long dstNodeId() {
        return metadata.getDstNodeId();
    }

    /** The full metadata as pulled (for the reply's task ids). */
    public Metadata metadata() {
        return metadata;
    }

    /** The records, or null when they could not be inflated. */
    public RecordDict content() {
        return content;
    }

    /** Why the content could not be inflated, or null. */
    public String decodeError() {
        return decodeError;
    }

    /** When this node finished pulling it (its clock, ms since the epoch). */
    public long receivedAtMillis() {
        return receivedAtMillis;
    }

    @Override
    public String toString() {
        return metadata.getMessageType() + " " + metadata.getMessageId() + " (run " + Long.toUnsignedString(runId())
                + ", group '" + groupId() + "')";
    }
}
