package org.fedmef.app.node;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;

/**
 * Resident memory of this process from Linux's {@code /proc/self/status}: {@code VmHWM} (the peak
 * resident set size since the process started: what training costs the phone, native runtime
 * allocations included) and {@code VmRSS} (now). Both in bytes, -1 when unreadable.
 */
public final class ProcStatus {
    private final long peakRss;
    private final long rss;

    private ProcStatus(long peakRss, long rss) {
        this.peakRss = peakRss;
        this.rss = rss;
    }

    public static ProcStatus read() {
        return read(Paths.get("/proc/self/status"));
    }

    static ProcStatus read(Path file) {
        try {
            return parse(Files.readAllLines(file, StandardCharsets.US_ASCII));
        } catch (IOException | RuntimeException e) {
            return new ProcStatus(-1, -1);
        }
    }

    static ProcStatus parse(List<String> lines) {
        return new ProcStatus(kilobytes(lines, "VmHWM:"), kilobytes(lines, "VmRSS:"));
    }

    public long peakRss() {
        return peakRss;
    }

    public long rss() {
        return rss;
    }

    private static long kilobytes(List<String> lines, String key) {
        for (String line : lines) {
            if (line.startsWith(key)) {
                String[] parts = line.substring(key.length()).trim().split("\\s+");
                long value = Long.parseLong(parts[0]);
                return parts.length > 1 && parts[1].equalsIgnoreCase("kB") ? value * 1024 : value;
            }
        }
        return -1;
    }
}
