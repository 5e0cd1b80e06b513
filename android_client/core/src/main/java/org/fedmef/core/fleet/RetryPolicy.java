package org.fedmef.core.fleet;

import java.util.Random;

/**
 * When a failed Fleet call is tried again: connection errors and retryable HTTP answers (5xx,
 * 429), up to {@code maxAttempts} tries, waiting {@code base · 2^(try−1)} capped at {@code max},
 * with "full jitter" (a uniform random wait up to that bound) so a fleet of phones does not
 * retry in lockstep. Other 4xx answers are never retried: they will not change by asking again
 * (a 401 caused by a wrong device clock included — its message says to check the clock).
 */
public final class RetryPolicy {
    private final int maxAttempts;
    private final long baseMillis;
    private final long maxMillis;
    private final Random random;

    public RetryPolicy(int maxAttempts, long baseMillis, long maxMillis, Random random) {
        if (maxAttempts < 1 || baseMillis < 0 || maxMillis < baseMillis) {
            throw new IllegalArgumentException("bad retry policy");
        }
        this.maxAttempts = maxAttempts;
        this.baseMillis = baseMillis;
        this.maxMillis = maxMillis;
        this.random = random;
    }

    /** 6 tries, waits up to 0.5, 1, 2, 4, 8 s. */
    public static RetryPolicy defaults() {
        return new RetryPolicy(6, 500, 30_000, new Random());
    }

    /** No retries. */
    public static RetryPolicy none() {
        return new RetryPolicy(1, 0, 0, new Random());
    }

    public int maxAttempts() {
        return maxAttempts;
    }

    /** The wait before try {@code attempt + 1}, after {@code attempt} (1-based) failed. */
    public long delayMillis(int attempt) {
        long bound = Math.min(maxMillis, baseMillis << Math.min(attempt - 1, 30));
        return bound == 0 ? 0 : (long) (random.nextDouble() * bound);
    }

    /** The upper bound of {@link #delayMillis} for {@code attempt}, for tests and logs. */
    public long maxDelayMillis(int attempt) {
        return Math.min(maxMillis, baseMillis << Math.min(attempt - 1, 30));
    }

    /** Whether this failure is worth another try. */
    public static boolean retryable(Exception e) {
        return e instanceof FleetException ? ((FleetException) e).retryable() : e instanceof java.io.IOException;
    }
}
