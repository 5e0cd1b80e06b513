package org.fedmef.app.node;

import java.text.SimpleDateFormat;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Date;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * The node's observable state, written by the node thread and read by the screen (through
 * LiveData) and by the instrumented test ({@link #awaitUntil}). Every change publishes a new
 * immutable {@link Snapshot}. Thread-safe.
 */
public final class StatusBoard {
    /** Lines of log kept for the screen. */
    public static final int LOG_LINES = 400;

    /** Where the node is in its life. */
    public enum Phase { IDLE, STARTING, ONLINE, WORKING, STOPPING, STOPPED, FAILED }

    private final ArrayDeque<String> log = new ArrayDeque<>();
    private final List<Consumer<Snapshot>> listeners = new CopyOnWriteArrayList<>();
    private final SimpleDateFormat clock = new SimpleDateFormat("HH:mm:ss", Locale.ROOT);
    private Snapshot current = new Snapshot(Phase.IDLE, "", null, null, 0, 0, 0, Memory.NONE, "",
            Collections.<String>emptyList());

    /** Calls {@code listener} with every new snapshot (on the writer's thread) and once now. */
    public void observe(Consumer<Snapshot> listener) {
        listeners.add(listener);
        listener.accept(snapshot());
    }

    public void unobserve(Consumer<Snapshot> listener) {
        listeners.remove(listener);
    }

    public synchronized Snapshot snapshot() {
        return current;
    }

    /** A new service run: counters back to zero, the log kept. */
    public void starting(String backend) {
        update(s -> new Snapshot(Phase.STARTING, "", backend, null, 0, 0, 0, s.memory, "", s.log));
        log("starting (" + backend + ")");
    }

    public void phase(Phase phase, String detail) {
        update(s -> new Snapshot(phase, s.node, s.backend, s.last, s.trainRounds, s.evaluateRounds, s.errorReplies,
                s.memory, phase == Phase.FAILED ? detail : s.failure, s.log));
        if (detail != null && !detail.isEmpty()) {
            log(phase.name().toLowerCase(Locale.ROOT) + ": " + detail);
        }
    }

    public void node(String node) {
        update(s -> new Snapshot(s.phase, node, s.backend, s.last, s.trainRounds, s.evaluateRounds, s.errorReplies,
                s.memory, s.failure, s.log));
    }

    /** An instruction was answered (content or error reply): counters and its log line in one snapshot. */
    public void answered(RoundSummary summary, Memory memory) {
        boolean train = "train".equals(summary.messageType());
        update(s -> new Snapshot(s.phase, s.node, s.backend, summary,
                s.trainRounds + (summary.ok() && train ? 1 : 0),
                s.evaluateRounds + (summary.ok() && !train ? 1 : 0),
                s.errorReplies + (summary.ok() ? 0 : 1), memory, s.failure, append(summary + " | " + memory)));
    }

    public void memory(Memory memory) {
        update(s -> new Snapshot(s.phase, s.node, s.backend, s.last, s.trainRounds, s.evaluateRounds, s.errorReplies,
                memory, s.failure, s.log));
    }

    /** Appends a line to the log (time-stamped). */
    public void log(String line) {
        update(s -> new Snapshot(s.phase, s.node, s.backend, s.last, s.trainRounds, s.evaluateRounds, s.errorReplies,
                s.memory, s.failure, append(line)));
    }

    /**
     * Waits until a snapshot satisfies {@code condition} or {@code timeoutMillis} passed; returns
     * the last snapshot either way (the caller asserts on it).
     */
    public Snapshot awaitUntil(Predicate<Snapshot> condition, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        synchronized (this) {
            while (!condition.test(current)) {
                long left = (deadline - System.nanoTime()) / 1_000_000L;
                if (left <= 0) {
                    break;
                }
                wait(Math.min(left, 1000));
            }
            return current;
        }
    }

    private interface Change {
        Snapshot apply(Snapshot s);
    }

    private void update(Change change) {
        Snapshot next;
        synchronized (this) {
            next = change.apply(current);
            current = next;
            notifyAll();
        }
        for (Consumer<Snapshot> l : listeners) {
            l.accept(next);
        }
    }

    /** Adds a time-stamped line; returns the log as the next snapshot shows it. Called under the lock. */
    private List<String> append(String line) {
        log.addLast(clock.format(new Date()) + " " + line);
        while (log.size() > LOG_LINES) {
            log.removeFirst();
        }
        return Collections.unmodifiableList(new ArrayList<>(log));
    }

    /** Memory readings taken after a round (bytes; -1 when unknown). */
    public static final class Memory {
        public static final Memory NONE = new Memory(-1, -1, -1, -1);
        /** Peak resident set size of the process ({@code VmHWM}). */
        public final long peakRss;
        /** Current resident set size ({@code VmRSS}). */
        public final long rss;
        /** Native heap in use ({@code Debug.getNativeHeapAllocatedSize()}). */
        public final long nativeHeap;
        /** Memory the system still has available ({@code ActivityManager.MemoryInfo.availMem}). */
        public final long systemAvailable;

        public Memory(long peakRss, long rss, long nativeHeap, long systemAvailable) {
            this.peakRss = peakRss;
            this.rss = rss;
            this.nativeHeap = nativeHeap;
            this.systemAvailable = systemAvailable;
        }

        @Override
        public String toString() {
            return "peak RSS " + mb(peakRss) + ", RSS " + mb(rss) + ", native heap " + mb(nativeHeap)
                    + ", system available " + mb(systemAvailable);
        }

        private static String mb(long bytes) {
            return bytes < 0 ? "?" : String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
        }
    }

    /** One immutable view of the node. */
    public static final class Snapshot {
        public final Phase phase;
        /** e.g. "node 1234 at 127.0.0.1:9091"; empty before activation. */
        public final String node;
        public final String backend;
        /** The last answered instruction, or null. */
        public final RoundSummary last;
        /** Train instructions answered with content since the service started. */
        public final int trainRounds;
        public final int evaluateRounds;
        public final int errorReplies;
        public final Memory memory;
        /** Why the node stopped, when {@link Phase#FAILED}. */
        public final String failure;
        public final List<String> log;

        Snapshot(Phase phase, String node, String backend, RoundSummary last, int trainRounds, int evaluateRounds,
                int errorReplies, Memory memory, String failure, List<String> log) {
            this.phase = phase;
            this.node = node;
            this.backend = backend;
            this.last = last;
            this.trainRounds = trainRounds;
            this.evaluateRounds = evaluateRounds;
            this.errorReplies = errorReplies;
            this.memory = memory;
            this.failure = failure;
            this.log = log;
        }

        /** Whether a node thread is (or is about to be) running. */
        public boolean running() {
            return phase == Phase.STARTING || phase == Phase.ONLINE || phase == Phase.WORKING || phase == Phase.STOPPING;
        }

        public boolean finished() {
            return phase == Phase.STOPPED || phase == Phase.FAILED;
        }
    }
}
