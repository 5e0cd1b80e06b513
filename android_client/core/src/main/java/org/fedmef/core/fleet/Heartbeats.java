package org.fedmef.core.fleet;

import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Sends heartbeats on a background thread until stopped, at flwr's pace: the next one
 * (interval − 5 s) · U(0.7, 0.9) after the previous, so the SuperLink (which marks a node offline
 * 2 × interval after its last heartbeat) always sees the node alive, also during long training.
 */
final class Heartbeats implements AutoCloseable {
    /** One heartbeat; its failure is logged and the schedule goes on. */
    interface Beat {
        void send() throws Exception;
    }

    private static final Logger LOG = Logger.getLogger(Heartbeats.class.getName());
    private final Beat beat;
    private final double intervalSeconds;
    private final Random random;
    private final ScheduledExecutorService executor;

    Heartbeats(Beat beat, double intervalSeconds, Random random) {
        this.beat = beat;
        this.intervalSeconds = intervalSeconds;
        this.random = random;
        this.executor = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "fleet-heartbeat");
            t.setDaemon(true);
            return t;
        });
    }

    /** The wait before the next heartbeat, in milliseconds. */
    static long delayMillis(double intervalSeconds, Random random) {
        double seconds = Math.max(intervalSeconds - 5, 0.05) * (0.7 + 0.2 * random.nextDouble());
        return (long) (seconds * 1000);
    }

    void start() {
        schedule();
    }

    private void schedule() {
        if (!executor.isShutdown()) {
            executor.schedule(this::tick, delayMillis(intervalSeconds, random), TimeUnit.MILLISECONDS);
        }
    }

    private void tick() {
        try {
            beat.send();
        } catch (Exception e) {
            LOG.log(Level.WARNING, "heartbeat failed: " + e.getMessage());
        } finally {
            try {
                schedule();
            } catch (java.util.concurrent.RejectedExecutionException stopped) {
                // closed meanwhile
            }
        }
    }

    @Override
    public void close() {
        executor.shutdownNow();
    }
}
