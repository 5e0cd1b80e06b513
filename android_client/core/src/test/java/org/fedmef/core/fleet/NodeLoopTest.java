package org.fedmef.core.fleet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import flwr.proto.MessageOuterClass;
import java.io.IOException;
import java.time.Clock;
import java.util.Random;
import okhttp3.mockwebserver.MockWebServer;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.RecordDict;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class NodeLoopTest {
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

    private FleetClient client() {
        return FleetClient.builder(OkHttpTransport.forBaseUrl(server.url("/").toString()), NodeKeys.generate())
                .retry(new RetryPolicy(2, 1, 1, new Random(0))).sleeper(ms -> { }).build();
    }

    private static RecordDict content() {
        return RecordDict.builder().put("metrics", MetricRecord.builder().put("x", 1).build()).build();
    }

    @Test
    void answersThenLeavesAndUnregisters() throws Exception {
        link.queue("evaluate", content(), Clock.systemUTC().millis() / 1000.0);
        MessageHandler echo = (type, content) -> content;
        assertEquals(1, new NodeLoop(client(), echo, 10, 0, 1, true).run());
        assertTrue(link.paths().contains("push-messages"));
        assertEquals("unregister-node", link.paths().get(link.paths().size() - 1));
        assertEquals("deactivate-node", link.paths().get(link.paths().size() - 2));
    }

    @Test
    void aFailingHandlerBecomesAnErrorReply() throws Exception {
        link.queue("train", content(), Clock.systemUTC().millis() / 1000.0);
        MessageHandler failing = (type, content) -> {
            throw new IllegalStateException("step.onnx: sha256 mismatch,\nexpected a, got b");
        };
        new NodeLoop(client(), failing, 10, 0, 1, false).run();
        assertEquals("deactivate-node", link.paths().get(link.paths().size() - 1), "kept its registration");
        MessageOuterClass.Message wire = link.pushedMessage.getMessagesList(0);
        assertEquals(NodeLoop.CLIENT_ERROR, wire.getError().getCode());
        assertEquals("step.onnx: sha256 mismatch, expected a, got b", wire.getError().getReason());
    }

    @Test
    void stopEndsPollingAndStillLeaves() throws Exception {
        NodeLoop loop = new NodeLoop(client(), (t, c) -> c, 20, 0, 0, true);
        Thread stopper = new Thread(() -> {
            try {
                Thread.sleep(200);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
            loop.stop();
        });
        stopper.start();
        assertEquals(0, loop.run());
        stopper.join();
        assertTrue(link.paths().contains("deactivate-node"));
    }

    @Test
    void smokeRunsTheConnectivityChecklist() throws Exception {
        String summary = NodeLoop.smoke(client());
        assertTrue(summary.contains("heartbeat success=true") && summary.contains("pulled nothing")
                && summary.endsWith("unregistered"), summary);
        assertEquals(java.util.Arrays.asList("register-node", "activate-node", "send-node-heartbeat", "pull-messages",
                "deactivate-node", "unregister-node"), link.paths());
    }
}
