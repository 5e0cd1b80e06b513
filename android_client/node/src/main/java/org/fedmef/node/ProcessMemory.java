package org.fedmef.node;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * This process's resident memory from Linux's {@code /proc/self/status} ({@code VmRSS}, and the
 * peak {@code VmHWM}, which writing "5" to {@code /proc/self/clear_refs} resets to the current
 * RSS: the method of {@code benchmarks/memory.py}). Every value is -1 where {@code /proc} is absent.
 */
final class ProcessMemory {
    private static final Path STATUS = Paths.get("/proc/self/status");
    private static final Path CLEAR_REFS = Paths.get("/proc/self/clear_refs");

    private ProcessMemory() {
    }

    /** Resets the peak to the current RSS; false where the kernel does not allow it. */
    static boolean resetPeak() {
        try {
            Files.write(CLEAR_REFS, "5".getBytes(StandardCharsets.US_ASCII));
            return true;
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }

    /** Resident set size in bytes. */
    static long rss() {
        return field("VmRSS:");
    }

    /** Peak resident set size in bytes since start or the last {@link #resetPeak()}. */
    static long peak() {
        return field("VmHWM:");
    }

    private static long field(String name) {
        try {
            for (String line : Files.readAllLines(STATUS, StandardCharsets.US_ASCII)) {
                if (line.startsWith(name)) { // "VmHWM:	  123456 kB"
                    String[] parts = line.substring(name.length()).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }
}
