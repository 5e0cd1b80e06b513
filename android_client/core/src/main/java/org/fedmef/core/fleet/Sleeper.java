package org.fedmef.core.fleet;

/** Waits; tests pass one that records the delays instead of sleeping. */
public interface Sleeper {
    /** Blocks for {@code millis} milliseconds (or until interrupted). */
    void sleep(long millis) throws InterruptedException;

    /** {@link Thread#sleep}. */
    static Sleeper system() {
        return Thread::sleep;
    }
}
