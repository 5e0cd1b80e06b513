package org.fedmef.core.fleet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import flwr.proto.MessageOuterClass.Metadata;
import org.junit.jupiter.api.Test;

class InstructionTest {
    @Test
    void restoredInstructionKeepsWhatAReplyNeeds() {
        Metadata metadata = Metadata.newBuilder().setRunId(7L).setMessageId("abc").setMessageType("train")
                .setGroupId("3").build();
        Instruction restored = Instruction.restore(metadata, null, 1234L);
        assertEquals(7L, restored.runId());
        assertEquals("abc", restored.messageId());
        assertEquals("train", restored.messageType());
        assertEquals("3", restored.groupId());
        assertNull(restored.decodeError());
    }
}
