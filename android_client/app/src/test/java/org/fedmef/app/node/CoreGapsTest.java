package org.fedmef.app.node;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import flwr.proto.MessageOuterClass.Metadata;
import java.nio.charset.StandardCharsets;
import java.security.Signature;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Base64;
import java.util.Map;
import org.fedmef.core.fleet.Instruction;
import org.fedmef.core.fleet.NodeKeys;
import org.fedmef.core.fleet.RequestSigner;
import org.junit.Test;

/** Fails as soon as fedmef-core changes a constructor the app reaches by reflection. */
public class CoreGapsTest {
    @Test
    public void nodeKeysWrapAKeyPairTheSignerCanUse() throws Exception {
        NodeKeys original = NodeKeys.generate();
        NodeKeys wrapped = CoreGaps.nodeKeys(original.keyPair());
        assertArrayEquals(original.publicKeyPem(), wrapped.publicKeyPem());
        assertEquals(original.openSshPublicKey(), wrapped.openSshPublicKey());

        Map<String, String> headers = new RequestSigner(wrapped,
                Clock.fixed(Instant.parse("2026-12-01T10:00:00Z"), ZoneOffset.UTC)).headers();
        Signature verify = Signature.getInstance("SHA256withECDSA");
        verify.initVerify(original.publicKey());
        verify.update(headers.get(RequestSigner.TIMESTAMP_HEADER).getBytes(StandardCharsets.US_ASCII));
        assertTrue(verify.verify(Base64.getDecoder().decode(headers.get(RequestSigner.SIGNATURE_HEADER))));
    }

    @Test
    public void instructionIsRebuiltFromItsMetadata() {
        Metadata m = Metadata.newBuilder().setRunId(3).setMessageId("abc").setMessageType("train").setTtl(60)
                .setCreatedAt(10).setDstNodeId(7).build();
        Instruction i = CoreGaps.instruction(m, null, 1234L);
        assertEquals("abc", i.messageId());
        assertEquals(m, i.metadata());
        assertEquals(1234L, i.receivedAtMillis());
        assertNull(i.content());
        assertNull(i.decodeError());
    }
}
