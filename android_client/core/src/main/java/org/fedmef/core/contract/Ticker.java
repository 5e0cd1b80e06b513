package org.fedmef.core.contract;

/** A monotonic clock in seconds, passed in so tests can fix the reply's {@code seconds} metric. */
public interface Ticker {
    double seconds();

    /** {@link System#nanoTime()} in seconds. */
    static Ticker system() {
        return () -> System.nanoTime() / 1e9;
    }
}
