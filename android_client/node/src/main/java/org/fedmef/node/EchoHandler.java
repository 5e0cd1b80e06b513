package org.fedmef.node;

import java.util.Map;
import org.fedmef.core.fleet.MessageHandler;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.MetricRecord;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.RecordDict;

/**
 * {@code --backend echo}: a protocol check without training. A {@code train} instruction is
 * answered with its own {@code v/} and {@code d/} state arrays as the update (a well-formed sparse
 * update) and zero metrics, {@code evaluate} with zero metrics; any other message type is refused
 * (an error reply). Useful to check a deployment end to end before shipping models.
 */
final class EchoHandler implements MessageHandler {
    @Override
    public RecordDict handle(String messageType, RecordDict content) {
        if ("train".equals(messageType)) {
            ArrayRecord.Builder update = ArrayRecord.builder();
            for (Map.Entry<String, NdArray> e : content.arrays("state").asMap().entrySet()) {
                if (e.getKey().startsWith("v/") || e.getKey().startsWith("d/")) {
                    update.put(e.getKey(), e.getValue());
                }
            }
            return RecordDict.builder().put("update", update.build())
                    .put("metrics", MetricRecord.builder().put("num-examples", 1).put("train-loss", 0.0)
                            .put("seconds", 0.0).build())
                    .build();
        }
        if ("evaluate".equals(messageType)) {
            return RecordDict.builder().put("metrics", MetricRecord.builder().put("num-examples", 1)
                    .put("loss", 0.0).put("accuracy", 0.0).build()).build();
        }
        throw new IllegalArgumentException("echo backend: unknown message type '" + messageType + "'");
    }
}
