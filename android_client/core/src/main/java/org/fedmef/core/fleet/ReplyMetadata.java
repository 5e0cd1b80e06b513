package org.fedmef.core.fleet;

import flwr.proto.MessageOuterClass.Metadata;

/**
 * The metadata of a reply, derived from its instruction as flwr 1.41 does ({@code Message(...,
 * reply_to=...)}): same run, group and type; source = this node, destination = the instruction's
 * source (the SuperLink, 1); task ids swapped; created now; a TTL ending when the instruction's
 * ends. {@code message_id} stays empty: it is the reply object's id, set after encoding.
 */
final class ReplyMetadata {
    private ReplyMetadata() {
    }

    static Metadata of(Metadata instruction, double nowSeconds) {
        Metadata.Builder reply = Metadata.newBuilder()
                .setRunId(instruction.getRunId())
                .setMessageId("")
                .setSrcNodeId(instruction.getDstNodeId())
                .setDstNodeId(instruction.getSrcNodeId())
                .setReplyToMessageId(instruction.getMessageId())
                .setGroupId(instruction.getGroupId())
                .setTtl(instruction.getCreatedAt() + instruction.getTtl() - nowSeconds)
                .setMessageType(instruction.getMessageType())
                .setCreatedAt(nowSeconds);
        if (instruction.hasDstTaskId()) {
            reply.setSrcTaskId(instruction.getDstTaskId());
        }
        if (instruction.hasSrcTaskId()) {
            reply.setDstTaskId(instruction.getSrcTaskId());
        }
        return reply.build();
    }
}
