package org.fedmef.app.node;

import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.RecordDict;

/**
 * One answered instruction, for the screen and the tests: its type, the server round (from the
 * plan), and the reply's metrics or the error reason. Record and key names are those of
 * docs/protocol.md §1 and §3 (core keeps its own copies private).
 */
public final class RoundSummary {
    static final String PLAN = "plan";
    static final String ROUND = "round";
    static final String METRICS = "metrics";
    static final String TRAIN_LOSS = "train-loss";
    static final String LOSS = "loss";
    static final String ACCURACY = "accuracy";
    static final String NUM_EXAMPLES = "num-examples";
    static final String SECONDS = "seconds";

    private final String messageType;
    private final long round;
    private final double loss;
    private final double accuracy;
    private final long examples;
    private final double seconds;
    private final String error;

    private RoundSummary(String messageType, long round, double loss, double accuracy, long examples, double seconds,
            String error) {
        this.messageType = messageType;
        this.round = round;
        this.loss = loss;
        this.accuracy = accuracy;
        this.examples = examples;
        this.seconds = seconds;
        this.error = error;
    }

    /** A successful reply: {@code train} metrics carry {@code train-loss}, {@code evaluate} metrics {@code loss} and {@code accuracy}. */
    public static RoundSummary of(String messageType, RecordDict instruction, RecordDict reply) {
        MetricRecord m = reply != null && reply.has(METRICS) && reply.get(METRICS) instanceof MetricRecord
                ? reply.metrics(METRICS) : null;
        return new RoundSummary(messageType, roundOf(instruction),
                number(m, TRAIN_LOSS, number(m, LOSS, Double.NaN)), number(m, ACCURACY, Double.NaN),
                m != null && m.has(NUM_EXAMPLES) ? (long) number(m, NUM_EXAMPLES, 0) : 0, number(m, SECONDS, Double.NaN),
                null);
    }

    /** An instruction answered with an error reply. */
    public static RoundSummary failed(String messageType, RecordDict instruction, String reason) {
        return new RoundSummary(messageType, roundOf(instruction), Double.NaN, Double.NaN, 0, Double.NaN, reason);
    }

    public String messageType() {
        return messageType;
    }

    /** The plan's server round, or -1 when the instruction had none. */
    public long round() {
        return round;
    }

    /** Mean training loss (train) or mean evaluation loss (evaluate); NaN when absent. */
    public double loss() {
        return loss;
    }

    /** Evaluation accuracy in [0, 1]; NaN for train replies. */
    public double accuracy() {
        return accuracy;
    }

    public long examples() {
        return examples;
    }

    public double seconds() {
        return seconds;
    }

    /** The error reply's reason, or null when the reply carried content. */
    public String error() {
        return error;
    }

    public boolean ok() {
        return error == null;
    }

    @Override
    public String toString() {
        String head = messageType + (round >= 0 ? " round " + round : "");
        if (!ok()) {
            return head + ": error reply: " + error;
        }
        StringBuilder s = new StringBuilder(head).append(": loss ").append(String.format(java.util.Locale.ROOT, "%.4f", loss));
        if (!Double.isNaN(accuracy)) {
            s.append(String.format(java.util.Locale.ROOT, ", accuracy %.2f %%", 100 * accuracy));
        }
        s.append(", ").append(examples).append(" examples");
        if (!Double.isNaN(seconds)) {
            s.append(String.format(java.util.Locale.ROOT, ", %.1f s", seconds));
        }
        return s.toString();
    }

    private static long roundOf(RecordDict instruction) {
        if (instruction == null || !instruction.has(PLAN) || !(instruction.get(PLAN) instanceof ConfigRecord)) {
            return -1;
        }
        ConfigRecord plan = instruction.config(PLAN);
        if (!plan.has(ROUND) || !(plan.get(ROUND) instanceof Long)) {
            return -1;
        }
        return plan.getLong(ROUND);
    }

    private static double number(MetricRecord m, String key, double otherwise) {
        if (m == null || !m.has(key) || !(m.get(key) instanceof Number)) {
            return otherwise;
        }
        return ((Number) m.get(key)).doubleValue();
    }
}
