package org.fedmef.app.node;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.RecordDict;
import org.junit.Test;

public class RoundSummaryTest {
    private static RecordDict plan(long round) {
        Map<String, Object> plan = new LinkedHashMap<>();
        plan.put("round", round);
        return RecordDict.builder().put("plan", ConfigRecord.of(plan)).build();
    }

    private static RecordDict metrics(Object... pairs) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            m.put((String) pairs[i], pairs[i + 1]);
        }
        return RecordDict.builder().put("metrics", MetricRecord.of(m)).build();
    }

    @Test
    public void trainAndEvaluateReplies() {
        RoundSummary train = RoundSummary.of("train", plan(4),
                metrics("num-examples", 120L, "train-loss", 0.75, "seconds", 2.5));
        assertEquals(4, train.round());
        assertEquals(0.75, train.loss(), 0);
        assertTrue(Double.isNaN(train.accuracy()));
        assertEquals(120, train.examples());
        assertEquals("train round 4: loss 0.7500, 120 examples, 2.5 s", train.toString());

        RoundSummary eval = RoundSummary.of("evaluate", RecordDict.empty(),
                metrics("num-examples", 30L, "loss", 1.5, "accuracy", 0.6));
        assertEquals(-1, eval.round());
        assertEquals(0.6, eval.accuracy(), 0);
        assertEquals("evaluate: loss 1.5000, accuracy 60.00 %, 30 examples", eval.toString());
    }

    @Test
    public void errorReplies() {
        RoundSummary failed = RoundSummary.failed("train", plan(2), "step.onnx: sha256 mismatch");
        assertFalse(failed.ok());
        assertEquals("train round 2: error reply: step.onnx: sha256 mismatch", failed.toString());
    }

    @Test
    public void procStatusReadsPeakAndCurrentResidentSize() {
        ProcStatus s = ProcStatus.parse(Arrays.asList("Name:\tjava", "VmHWM:\t  204800 kB", "VmRSS:\t  102400 kB"));
        assertEquals(204800L * 1024, s.peakRss());
        assertEquals(102400L * 1024, s.rss());
        assertEquals(-1, ProcStatus.parse(Arrays.asList("Name:\tx")).peakRss());
    }

    @Test
    public void boardCountsRoundsAndWakesWaiters() throws Exception {
        StatusBoard board = new StatusBoard();
        board.starting("ORT");
        Thread writer = new Thread(() -> {
            board.answered(RoundSummary.of("train", plan(1), metrics("train-loss", 1.0)), StatusBoard.Memory.NONE);
            board.answered(RoundSummary.failed("train", plan(2), "x"), StatusBoard.Memory.NONE);
            board.answered(RoundSummary.of("train", plan(3), metrics("train-loss", 0.5)), StatusBoard.Memory.NONE);
        });
        writer.start();
        StatusBoard.Snapshot s = board.awaitUntil(x -> x.trainRounds >= 2, 5000);
        writer.join();
        assertEquals(2, s.trainRounds);
        assertEquals(1, s.errorReplies);
        assertEquals(3, s.last.round());
        assertTrue(s.log.get(s.log.size() - 1).contains("train round 3: loss 0.5000"));
    }
}
