package org.fedmef.app.node;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import flwr.proto.MessageOuterClass.Metadata;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import org.fedmef.core.contract.ContractException;
import org.fedmef.core.fleet.FleetClient;
import org.fedmef.core.fleet.MessageHandler;
import org.fedmef.core.fleet.NodeKeys;
import org.fedmef.core.fleet.RetryPolicy;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.RecordDict;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class DurableNodeTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private final NodeKeys keys = NodeKeys.generate();
    private Path dir;
    private ReplyJournal journal;
    private StatusBoard board;

    @Before
    public void setUp() throws Exception {
        dir = tmp.newFolder().toPath();
        journal = new ReplyJournal(dir.resolve("journal"));
        board = new StatusBoard();
    }

    private static RecordDict trainInstruction(long round) {
        Map<String, Object> plan = new LinkedHashMap<>();
        plan.put("round", round);
        plan.put("lr", 0.05);
        return RecordDict.builder().put("plan", ConfigRecord.of(plan)).build();
    }

    private static RecordDict trainReply(double loss) {
        Map<String, Object> metrics = new LinkedHashMap<>();
        metrics.put("num-examples", 12L);
        metrics.put("train-loss", loss);
        metrics.put("seconds", 1.5);
        Map<String, NdArray> update = new LinkedHashMap<>();
        update.put("v/conv1", NdArray.ofFloats(new float[] {0.5f, -1.25f, 3f}));
        return RecordDict.builder().put("update", ArrayRecord.of(update)).put("metrics", MetricRecord.of(metrics)).build();
    }

    private DurableNode node(ScriptedSuperLink link, MessageHandler handler) {
        FleetClient client = FleetClient.builder(link, keys).retry(RetryPolicy.none()).build();
        return new DurableNode(client, handler, journal, dir.resolve("node.properties"), "127.0.0.1:9091", board,
                () -> StatusBoard.Memory.NONE, Clock.systemUTC(), 20, 0);
    }

    /** A handler that answers with {@code reply} and stops the node after the first instruction. */
    private static MessageHandler once(AtomicReference<DurableNode> node, RecordDict reply) {
        return (type, content) -> {
            node.get().stop();
            return reply;
        };
    }

    private static double now() {
        return System.currentTimeMillis() / 1000.0;
    }

    @Test
    public void answersATrainInstructionAndKeepsNothingPending() throws Exception {
        ScriptedSuperLink link = new ScriptedSuperLink();
        Metadata sent = link.queue("train", trainInstruction(3), now(), 600);
        AtomicReference<DurableNode> node = new AtomicReference<>();
        node.set(node(link, once(node, trainReply(0.5))));

        assertEquals(1, node.get().run());

        assertEquals(1, link.pushed.size());
        ScriptedSuperLink.Pushed reply = link.pushed.get(0);
        assertEquals(sent.getMessageId(), reply.metadata.getReplyToMessageId());
        assertEquals(trainReply(0.5), reply.content);
        assertNull(journal.load());
        StatusBoard.Snapshot s = board.snapshot();
        assertEquals(1, s.trainRounds);
        assertEquals(3, s.last.round());
        assertEquals(0.5, s.last.loss(), 0);
        NodeState state = NodeState.load(dir.resolve("node.properties"));
        assertEquals(ScriptedSuperLink.NODE_ID, state.nodeId());
        assertTrue(state.registered());
        assertTrue(link.calls.contains("deactivate-node"));
        assertFalse("the key must stay registered", link.calls.contains("unregister-node"));
    }

    @Test
    public void aReplyThatCouldNotBePushedIsPushedByTheNextProcess() throws Exception {
        ScriptedSuperLink link = new ScriptedSuperLink();
        Metadata sent = link.queue("train", trainInstruction(1), now(), 600);
        link.pushFailures.add(503);
        AtomicReference<DurableNode> first = new AtomicReference<>();
        first.set(node(link, once(first, trainReply(0.25))));
        first.get().run();
        assertTrue(link.pushed.isEmpty());
        ReplyJournal.Pending pending = journal.load();
        assertNotNull("the computed reply must be on disk", pending);
        assertEquals(sent, pending.instruction());
        assertEquals(trainReply(0.25), pending.reply());

        // a new process: new client, same storage, nothing queued on the SuperLink
        DurableNode second = node(link, (type, content) -> {
            throw new AssertionError("no instruction was queued");
        });
        Thread thread = new Thread(() -> {
            try {
                second.run();
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        thread.start();
        long deadline = System.currentTimeMillis() + 10_000;
        while (link.pushed.isEmpty() && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        second.stop();
        thread.join(10_000);

        assertEquals(1, link.pushed.size());
        assertEquals(sent.getMessageId(), link.pushed.get(0).metadata.getReplyToMessageId());
        assertEquals(ScriptedSuperLink.NODE_ID, link.pushed.get(0).metadata.getSrcNodeId());
        assertEquals(trainReply(0.25), link.pushed.get(0).content);
        assertNull(journal.load());
    }

    @Test
    public void aSavedReplyWhoseTtlExpiredIsDropped() throws Exception {
        Metadata old = Metadata.newBuilder().setMessageId("ab").setRunId(5).setSrcNodeId(1)
                .setDstNodeId(ScriptedSuperLink.NODE_ID).setMessageType("train").setCreatedAt(now() - 1000).setTtl(60)
                .build();
        journal.save(old, trainReply(1), System.currentTimeMillis() - 999_000);
        ScriptedSuperLink link = new ScriptedSuperLink();
        link.queue("train", trainInstruction(2), now(), 600);
        AtomicReference<DurableNode> node = new AtomicReference<>();
        node.set(node(link, once(node, trainReply(0.75))));

        node.get().run();

        assertEquals("only the new round's reply", 1, link.pushed.size());
        assertEquals(trainReply(0.75), link.pushed.get(0).content);
        assertTrue(String.join("\n", board.snapshot().log).contains("TTL has expired"));
    }

    @Test
    public void aRefusedReplyIsDroppedAndAFailedRoundIsAnErrorReply() throws Exception {
        ScriptedSuperLink link = new ScriptedSuperLink();
        link.queue("train", trainInstruction(1), now(), 600);
        link.queue("evaluate", trainInstruction(1), now(), 600);
        link.pushFailures.add(400);
        AtomicReference<DurableNode> node = new AtomicReference<>();
        node.set(node(link, (type, content) -> {
            if ("train".equals(type)) {
                return trainReply(0.5);
            }
            node.get().stop();
            throw new ContractException("step.pte: sha256 mismatch");
        }));

        assertEquals(2, node.get().run());

        assertNull("a refused reply cannot be pushed again", journal.load());
        assertEquals(1, link.pushed.size());
        assertEquals("step.pte: sha256 mismatch", link.pushed.get(0).error);
        StatusBoard.Snapshot s = board.snapshot();
        assertEquals(1, s.trainRounds);
        assertEquals(1, s.errorReplies);
        assertFalse(s.last.ok());
    }

    @Test
    public void noReplyContentIsAnErrorReply() throws Exception {
        ScriptedSuperLink link = new ScriptedSuperLink();
        link.queue("train", trainInstruction(1), now(), 600);
        AtomicReference<DurableNode> node = new AtomicReference<>();
        node.set(node(link, once(node, null)));

        node.get().run();

        assertEquals("the client produced no reply content", link.pushed.get(0).error);
        assertNull(journal.load());
    }

    @Test
    public void stateFileKeepsAnUnsignedNodeId() throws Exception {
        Path file = dir.resolve("state.properties");
        new NodeState("host:1", -2L, true).save(file);
        assertEquals(-2L, NodeState.load(file).nodeId());
        assertEquals("node 18446744073709551614 at host:1 (registered)", NodeState.load(file).toString());
        assertEquals(0, NodeState.load(dir.resolve("absent")).nodeId());
        assertTrue(Files.isRegularFile(file));
    }
}
