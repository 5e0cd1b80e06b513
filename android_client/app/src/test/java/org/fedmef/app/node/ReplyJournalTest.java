package org.fedmef.app.node;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import flwr.proto.MessageOuterClass.Metadata;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.fedmef.core.codec.ObjectCodec;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.RecordDict;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class ReplyJournalTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private static final Metadata INSTRUCTION = Metadata.newBuilder().setRunId(9).setMessageId("feed")
            .setSrcNodeId(1).setDstNodeId(42).setGroupId("3").setMessageType("train").setCreatedAt(1000.0).setTtl(600)
            .build();

    private static RecordDict reply(int n) {
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = i * 0.5f - 3;
        }
        Map<String, NdArray> update = new LinkedHashMap<>();
        update.put("v/conv1", NdArray.ofFloats(values));
        update.put("d/fc.bias", NdArray.ofFloats(new float[] {1, 2, 3, 4}, 2, 2));
        update.put("gi/conv1", NdArray.ofInts(new int[] {7, 3}));
        Map<String, Object> metrics = new LinkedHashMap<>();
        metrics.put("num-examples", 100L);
        metrics.put("train-loss", 0.125);
        return RecordDict.builder().put("update", ArrayRecord.of(update)).put("metrics", MetricRecord.of(metrics)).build();
    }

    @Test
    public void roundTripsTheInstructionAndTheReply() throws Exception {
        ReplyJournal journal = new ReplyJournal(tmp.getRoot().toPath());
        assertNull(journal.load());
        journal.save(INSTRUCTION, reply(10), 1_000_500L);
        ReplyJournal.Pending p = journal.load();
        assertEquals(INSTRUCTION, p.instruction());
        assertEquals(reply(10), p.reply());
        assertEquals(1_000_500L, p.receivedAtMillis());
        journal.clear();
        assertNull(journal.load());
    }

    @Test
    public void largeRepliesSpanSeveralChunks() throws Exception {
        ReplyJournal journal = new ReplyJournal(tmp.getRoot().toPath(), new ObjectCodec(1024));
        journal.save(INSTRUCTION, reply(5000), 1);
        assertEquals(reply(5000), journal.load().reply());
    }

    @Test
    public void aNewReplyReplacesTheOldOne() throws Exception {
        ReplyJournal journal = new ReplyJournal(tmp.getRoot().toPath());
        journal.save(INSTRUCTION, reply(3), 1);
        Metadata next = INSTRUCTION.toBuilder().setMessageId("beef").build();
        journal.save(next, reply(4), 2);
        assertEquals(next, journal.load().instruction());
        assertEquals(reply(4), journal.load().reply());
    }

    @Test
    public void ttlDecidesWhetherTheReplyIsStillWanted() throws Exception {
        ReplyJournal journal = new ReplyJournal(tmp.getRoot().toPath());
        journal.save(INSTRUCTION, reply(3), 1);
        ReplyJournal.Pending p = journal.load();
        assertFalse(p.expired(1_599_000L));
        assertTrue(p.expired(1_600_000L));
    }

    @Test
    public void aCorruptEntryIsDropped() throws Exception {
        Path root = tmp.getRoot().toPath();
        ReplyJournal journal = new ReplyJournal(root);
        journal.save(INSTRUCTION, reply(3), 1);
        Path objects = root.resolve("pending").resolve("reply.objects");
        byte[] bytes = Files.readAllBytes(objects);
        bytes[bytes.length - 3] ^= 0x55; // one flipped byte: the object no longer hashes to its id
        Files.write(objects, bytes);
        assertNull(journal.load());
        assertFalse(Files.exists(root.resolve("pending")));
    }
}
