package org.fedmef.core.contract;

/**
 * The SplitMix64 generator of protocol §4: 64-bit state, all arithmetic modulo 2^64. Java's
 * {@code long} wraps exactly like unsigned 64-bit arithmetic; shifts are unsigned ({@code >>>}).
 * Outputs are raw 64-bit patterns: read them with {@link Long#toUnsignedString(long)} or
 * {@link Long#remainderUnsigned(long, long)}.
 */
public final class SplitMix64 {
    private long state;

    public SplitMix64(long seed) {
        this.state = seed;
    }

    /** Advances the state and returns the next 64-bit output. */
    public long next() {
        state += 0x9E3779B97F4A7C15L;
        long z = state;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** The next output modulo {@code bound} (unsigned remainder), {@code bound > 0}. */
    public int nextBelow(int bound) {
        return (int) Long.remainderUnsigned(next(), bound);
    }
}
