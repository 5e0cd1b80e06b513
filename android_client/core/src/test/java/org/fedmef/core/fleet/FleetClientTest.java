package org.fedmef.core.fleet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import flwr.proto.FleetOuterClass;
import flwr.proto.Heartbeat;
import flwr.proto.MessageOuterClass;
import flwr.proto.MessageOuterClass.Metadata;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.Signature;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import okhttp3.mockwebserver.MockWebServer;
import okhttp3.mockwebserver.RecordedRequest;
import org.fedmef.core.codec.DecodedMessage;
import org.fedmef.core.codec.EncodedObject;
import org.fedmef.core.codec.ObjectCodec;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.RecordDict;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The Fleet client against a scripted SuperLink on MockWebServer: RPC sequence, headers, retries. */
class FleetClientTest {
    private static final double NOW = 1_800_000_000.25;
    private final NodeKeys keys = NodeKeys.generate();
    private final Clock clock = Clock.fixed(Instant.ofEpochMilli((long) (NOW * 1000)), ZoneOffset.UTC);
    private final List<Long> sleeps = new ArrayList<>();
    private MockWebServer server;
    private FakeSuperLink link;

    @BeforeEach
    void start() throws IOException {
        server = new MockWebServer();
        link = new FakeSuperLink();
        server.setDispatcher(link);
        server.start();
    }

    @AfterEach
    void stop() throws IOException {
        server.shutdown();
    }

    private FleetClient client(RetryPolicy retry) {
        return FleetClient.builder(OkHttpTransport.forBaseUrl(server.url("/").toString()), keys)
                .clock(clock).retry(retry).sleeper(sleeps::add).heartbeatInterval(30).build();
    }

    private FleetClient client() {
        return client(new RetryPolicy(4, 100, 1000, new Random(1)));
    }

    private static RecordDict trainContent() {
        return RecordDict.builder()
                .put("state", ArrayRecord.builder().put("v/conv1", NdArray.ofFloats(new float[] {1f, 2f})).build())
                .put("plan", ConfigRecord.builder().put("round", 4).put("lr", 0.1).build())
                .build();
    }

    private static RecordDict replyContent() {
        return RecordDict.builder()
                .put("update", ArrayRecord.builder().put("v/conv1", NdArray.ofFloats(new float[] {0.5f, 1.5f})).build())
                .put("metrics", MetricRecord.builder().put("num-examples", 8).put("train-loss", 0.75).build())
                .build();
    }

    @Test
    void oneRoundUsesFlwrsRpcSequenceAndReplyMetadata() throws Exception {
        Metadata sent = link.queue("train", trainContent(), NOW - 10);
        try (FleetClient client = client()) {
            assertTrue(client.register());
            assertEquals(FakeSuperLink.NODE_ID, client.activate());
            assertTrue(client.heartbeat());
            Instruction ins = client.pullMessage();
            assertEquals(trainContent(), ins.content());
            assertEquals("train", ins.messageType());
            assertEquals(sent.getMessageId(), ins.messageId());
            client.pushReply(ins, replyContent());
            assertNull(client.pullMessage());
            client.deactivate();
            client.unregister();
        }
        assertEquals(Arrays.asList("register-node", "activate-node", "send-node-heartbeat", "pull-messages",
                "pull-object", "pull-object", "pull-object", "pull-object", "pull-object", "pull-object",
                "confirm-message-received", "push-messages", "push-object", "push-object", "push-object",
                "push-object", "push-object", "push-object", "pull-messages", "deactivate-node", "unregister-node"),
                link.paths());

        FleetOuterClass.PushMessagesRequest push = link.pushedMessage;
        MessageOuterClass.Message wire = push.getMessagesList(0);
        Metadata reply = wire.getMetadata();
        assertEquals(FakeSuperLink.NODE_ID, push.getNode().getNodeId());
        assertEquals(sent.getRunId(), reply.getRunId());
        assertEquals(FakeSuperLink.NODE_ID, reply.getSrcNodeId());
        assertEquals(1, reply.getDstNodeId());
        assertEquals(sent.getMessageId(), reply.getReplyToMessageId());
        assertEquals("4", reply.getGroupId());
        assertEquals("train", reply.getMessageType());
        assertEquals(NOW, reply.getCreatedAt());
        assertEquals(590.0, reply.getTtl(), 1e-6);
        assertEquals(77, reply.getDstTaskId());
        assertFalse(reply.hasSrcTaskId());
        assertTrue(wire.hasContent() && wire.getContent().getItemsCount() == 0, "content present but empty");
        assertFalse(wire.hasError());
        assertEquals(reply.getMessageId(), push.getMessageObjectTrees(0).getObjectId());
        assertEquals(1, push.getClientappRuntimeListCount());

        // what was pushed inflates to the reply (ids verified), and came children first
        Map<String, byte[]> objects = new HashMap<>();
        List<String> order = new ArrayList<>(link.pushedObjects.keySet());
        link.pushedObjects.forEach((id, content) -> objects.put(id, content.toByteArray()));
        DecodedMessage decoded = new ObjectCodec().decodeMessage(reply.getMessageId(), objects);
        assertEquals(replyContent(), decoded.content());
        assertEquals(reply.getMessageId(), order.get(order.size() - 1));
    }

    @Test
    void everyRequestIsSignedProtobuf() throws Exception {
        try (FleetClient client = client()) {
            client.register();
            client.activate();
        }
        for (RecordedRequest r : link.requests) {
            assertEquals("POST", r.getMethod());
            assertEquals("application/protobuf", r.getHeader("content-type"));
            assertArrayEquals(keys.publicKeyPem(), Base64.getDecoder().decode(r.getHeader(RequestSigner.PUBLIC_KEY_HEADER)));
            String timestamp = r.getHeader(RequestSigner.TIMESTAMP_HEADER);
            assertEquals("2027-01-15T08:00:00.250000+00:00", timestamp);
            Signature verify = Signature.getInstance("SHA256withECDSA");
            verify.initVerify(keys.publicKey());
            verify.update(timestamp.getBytes(StandardCharsets.US_ASCII));
            assertTrue(verify.verify(Base64.getDecoder().decode(r.getHeader(RequestSigner.SIGNATURE_HEADER))));
        }
        FleetOuterClass.ActivateNodeRequest activate =
                FleetOuterClass.ActivateNodeRequest.parseFrom(link.requests.get(1).getBody().readByteArray());
        assertEquals(30.0, activate.getHeartbeatInterval());
        assertArrayEquals(keys.publicKeyPem(), activate.getPublicKey().toByteArray());
    }

    @Test
    void retriesServerErrorsWithBoundedJitteredBackoff() throws Exception {
        link.failures.add(FakeSuperLink.error(503, "{\"detail\": \"busy\"}"));
        link.failures.add(FakeSuperLink.error(500, "{\"detail\": \"Internal server error\"}"));
        RetryPolicy policy = new RetryPolicy(4, 100, 1000, new Random(1));
        try (FleetClient client = client(policy)) {
            assertEquals(FakeSuperLink.NODE_ID, client.activate());
        }
        assertEquals(3, link.requests.size());
        assertEquals(2, sleeps.size());
        for (int i = 0; i < sleeps.size(); i++) {
            assertTrue(sleeps.get(i) >= 0 && sleeps.get(i) <= policy.maxDelayMillis(i + 1), "delay " + sleeps);
        }
        assertEquals(100, policy.maxDelayMillis(1));
        assertEquals(200, policy.maxDelayMillis(2));
        assertEquals(1000, policy.maxDelayMillis(5));
    }

    @Test
    void givesUpAfterMaxAttempts() {
        for (int i = 0; i < 4; i++) {
            link.failures.add(FakeSuperLink.error(502, "bad gateway"));
        }
        FleetException e = assertThrows(FleetException.class, () -> client().activate());
        assertEquals(502, e.status());
        assertEquals(-1, e.code());
        assertEquals("bad gateway", e.detail());
        assertEquals(4, link.requests.size());
    }

    @Test
    void neverRetriesClientErrors() {
        link.failures.add(FakeSuperLink.error(400, "{\"code\": 9, \"detail\": \"Invalid request\"}"));
        FleetException e = assertThrows(FleetException.class, () -> client().activate());
        assertEquals(400, e.status());
        assertEquals(9, e.code());
        assertEquals("Invalid request", e.detail());
        assertEquals(1, link.requests.size());
        assertTrue(sleeps.isEmpty());
    }

    @Test
    void unauthorizedPointsAtTheClock() {
        link.failures.add(FakeSuperLink.error(401, "{\"detail\": \"Invalid SuperNode authentication\"}"));
        FleetException e = assertThrows(FleetException.class, () -> client().activate());
        assertEquals(401, e.status());
        assertTrue(e.getMessage().contains("clock"), e.getMessage());
        assertEquals(1, link.requests.size());
    }

    @Test
    void retriesConnectionErrorsThenFails() throws IOException {
        FleetClient client = client();
        server.shutdown();
        assertThrows(IOException.class, client::activate);
        assertEquals(3, sleeps.size());
    }

    @Test
    void alreadyRegisteredOrAuthEnabledGoesStraightToActivate() throws Exception {
        link.failures.add(FakeSuperLink.error(412, "{\"code\": 23, \"detail\": \"Public key already in use\"}"));
        link.failures.add(FakeSuperLink.error(412, "{\"code\": 2001, \"detail\": \"SuperNode registration is disabled\"}"));
        link.failures.add(FakeSuperLink.error(412, "{\"code\": 99, \"detail\": \"something else\"}"));
        try (FleetClient client = client()) {
            assertFalse(client.register());
            assertFalse(client.register());
            assertEquals(99, assertThrows(FleetException.class, client::register).code());
            assertEquals(FakeSuperLink.NODE_ID, client.activate());
        }
    }

    @Test
    void waitsForObjectsNotYetAvailable() throws Exception {
        link.queue("evaluate", trainContent(), NOW);
        link.unavailablePulls = 2;
        try (FleetClient client = client()) {
            client.activate();
            assertEquals(trainContent(), client.pullMessage().content());
        }
        assertEquals(Arrays.asList(1000L, 1000L), sleeps);
    }

    @Test
    void corruptObjectsBecomeADecodeErrorNotACrash() throws Exception {
        Metadata sent = link.queue("train", trainContent(), NOW);
        link.corrupt(sent.getMessageId(), "Message  3\u0000abc".getBytes(StandardCharsets.UTF_8));
        try (FleetClient client = client()) {
            client.activate();
            Instruction ins = client.pullMessage();
            assertNull(ins.content());
            assertTrue(ins.decodeError().contains("sha256 mismatch"), ins.decodeError());
            client.pushError(ins, 1, "cannot read the instruction: " + ins.decodeError());
        }
        MessageOuterClass.Message wire = link.pushedMessage.getMessagesList(0);
        assertTrue(wire.hasError());
        assertFalse(wire.hasContent());
        assertEquals(1, wire.getError().getCode());
        assertEquals(1, link.pushedObjects.size(), "an error reply is a single object");
        assertEquals(wire.getMetadata().getMessageId(), link.pushedObjects.keySet().iterator().next());
    }

    @Test
    void pushesOnlyWhatTheSuperLinkAsksForAndChecksStored() throws Exception {
        link.queue("train", trainContent(), NOW);
        try (FleetClient client = client()) {
            client.activate();
            Instruction ins = client.pullMessage();
            EncodedObject expected = new ObjectCodec().encodeRecordDict(replyContent());
            link.objectsToPush = new ArrayList<>();
            link.objectsToPush.add(expected.id()); // the RecordDict only (say the arrays were known)
            client.pushReply(ins, replyContent());
            assertEquals(new ArrayList<>(link.objectsToPush), new ArrayList<>(link.pushedObjects.keySet()));

            link.queue("train", trainContent(), NOW);
            Instruction again = client.pullMessage();
            link.objectsToPush = null;
            link.storeObjects = false;
            assertThrows(IOException.class, () -> client.pushReply(again, replyContent()));
        }
    }

    @Test
    void backgroundHeartbeatsFollowFlwrsPace() throws Exception {
        Random random = new Random(3);
        for (int i = 0; i < 100; i++) {
            long d = Heartbeats.delayMillis(30, random);
            assertTrue(d >= 17_500 && d <= 22_500, "delay " + d);
        }
        List<String> beats = new ArrayList<>();
        try (Heartbeats h = new Heartbeats(() -> beats.add("beat"), 5.1, new Random(0))) {
            h.start(); // (5.1 - 5) * U(0.7, 0.9) s = 70..90 ms apart
            Thread.sleep(600);
        }
        int count = beats.size();
        assertTrue(count >= 3, "heartbeats sent: " + count);
        Thread.sleep(300);
        assertEquals(count, beats.size(), "no heartbeat after close");
    }

    @Test
    void heartbeatRequestCarriesNodeAndInterval() throws Exception {
        try (FleetClient client = client()) {
            client.activate();
            client.heartbeat();
        }
        Heartbeat.SendNodeHeartbeatRequest hb =
                Heartbeat.SendNodeHeartbeatRequest.parseFrom(link.requests.get(1).getBody().readByteArray());
        assertEquals(FakeSuperLink.NODE_ID, hb.getNode().getNodeId());
        assertEquals(30.0, hb.getHeartbeatInterval());
        assertNotNull(link.requests.get(1).getHeader(RequestSigner.SIGNATURE_HEADER));
    }
}
