package org.fedmef.core.contract;

import java.io.IOException;
import org.fedmef.core.fleet.MessageHandler;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.Record;
import org.fedmef.core.records.RecordDict;

/**
 * The FedMef client contract as a Fleet {@link MessageHandler} (protocol §5): for {@code train}
 * and {@code evaluate} it parses the plan's manifest, stores and verifies the artifacts, then
 * runs the round. Graph sessions stay open across rounds (one per file sha256) until the manifest
 * stops using them or {@link #close()}. Any failure is an exception whose message can serve as
 * the error reply's reason.
 */
public final class RoundRunner implements MessageHandler, AutoCloseable {
    public static final String TRAIN = "train";
    public static final String EVALUATE = "evaluate";

    private final ArtifactStore store;
    private final Ticker ticker;
    private final SessionCache sessions;
    private final TrainRound train;
    private final EvaluateRound evaluate;

    public RoundRunner(DataSource data, ArtifactStore store, Trainer trainer, Ticker ticker) {
        this.store = store;
        this.ticker = ticker;
        this.sessions = new SessionCache(trainer, store);
        this.train = new TrainRound(data, sessions);
        this.evaluate = new EvaluateRound(data, sessions);
    }

    @Override
    public synchronized RecordDict handle(String messageType, RecordDict content) throws IOException {
        double start = ticker.seconds();
        if (!TRAIN.equals(messageType) && !EVALUATE.equals(messageType)) {
            throw new ContractException("unknown message type '" + messageType + "' (this client handles "
                    + TRAIN + " and " + EVALUATE + ")");
        }
        Plan plan = new Plan(record(content, messageType, "plan", ConfigRecord.class));
        Manifest manifest = Manifest.parse(plan.manifestJson());
        ArrayRecord artifacts = content.has("artifacts")
                ? record(content, messageType, "artifacts", ArrayRecord.class) : ArrayRecord.builder().build();
        store.receive(manifest, artifacts);
        store.verify(manifest);
        sessions.retain(manifest);
        ArrayRecord state = record(content, messageType, "state", ArrayRecord.class);
        if (EVALUATE.equals(messageType)) {
            return evaluate.run(manifest, plan, state);
        }
        return train.run(manifest, plan, state).content(ticker.seconds() - start);
    }

    /** Closes every open graph session. */
    @Override
    public synchronized void close() {
        sessions.close();
    }

    private static <T extends Record> T record(RecordDict content, String type, String name, Class<T> kind) {
        if (!content.has(name)) {
            throw new ContractException(type + " instruction has no '" + name + "' record");
        }
        Record r = content.get(name);
        if (!kind.isInstance(r)) {
            throw new ContractException(type + " instruction's '" + name + "' is not a " + kind.getSimpleName());
        }
        return kind.cast(r);
    }
}
