package org.fedmef.app.node;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.Properties;

/**
 * What the user chose on the screen: the SuperLink, how to trust it, the backend and the data
 * partition. Immutable. Saved to app storage when training starts, so a node restarted after
 * process death (the service comes back without its intent) runs with the same settings.
 */
public final class NodeSettings {
    /** Partition bundled in the APK's {@code assets/partitions/<name>/}. */
    public static final String ASSET_PREFIX = "asset:";

    private final String superlink;
    private final String caCertificate;
    private final Backend backend;
    private final String partition;
    private final double heartbeatSeconds;
    private final double pollSeconds;
    private final int threads;

    private NodeSettings(Builder b) {
        if (b.superlink == null || !b.superlink.matches("[^\\s/:]+:\\d{1,5}")) {
            throw new IllegalArgumentException("SuperLink address must be host:port, got '" + b.superlink + "'");
        }
        if (b.partition == null || b.partition.isEmpty()) {
            throw new IllegalArgumentException("choose a data partition");
        }
        if (b.heartbeatSeconds < 10 || b.heartbeatSeconds > 1800) {
            throw new IllegalArgumentException("heartbeat interval must be in [10, 1800] s");
        }
        if (b.pollSeconds <= 0 || b.threads < 0) {
            throw new IllegalArgumentException("poll interval must be > 0 and threads >= 0");
        }
        this.superlink = b.superlink;
        this.caCertificate = b.caCertificate == null ? "" : b.caCertificate;
        this.backend = b.backend;
        this.partition = b.partition;
        this.heartbeatSeconds = b.heartbeatSeconds;
        this.pollSeconds = b.pollSeconds;
        this.threads = b.threads;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** {@code host:port} of the SuperLink's Fleet API. */
    public String superlink() {
        return superlink;
    }

    /** Path of the CA certificate (PEM) to trust over TLS; empty for a plain-http ({@code --insecure}) SuperLink. */
    public String caCertificate() {
        return caCertificate;
    }

    public boolean insecure() {
        return caCertificate.isEmpty();
    }

    public Backend backend() {
        return backend;
    }

    /** {@code asset:<name>} (bundled) or the absolute path of a partition directory (protocol §8). */
    public String partition() {
        return partition;
    }

    public double heartbeatSeconds() {
        return heartbeatSeconds;
    }

    public long pollMillis() {
        return (long) (pollSeconds * 1000);
    }

    public int threads() {
        return threads;
    }

    public Builder toBuilder() {
        return builder().superlink(superlink).caCertificate(caCertificate).backend(backend).partition(partition)
                .heartbeatSeconds(heartbeatSeconds).pollSeconds(pollSeconds).threads(threads);
    }

    /** Writes the settings atomically (temporary file, then rename). */
    public void save(Path file) throws IOException {
        Properties p = new Properties();
        p.setProperty("superlink", superlink);
        p.setProperty("ca-certificate", caCertificate);
        p.setProperty("backend", backend.name());
        p.setProperty("partition", partition);
        p.setProperty("heartbeat-seconds", Double.toString(heartbeatSeconds));
        p.setProperty("poll-seconds", Double.toString(pollSeconds));
        p.setProperty("threads", Integer.toString(threads));
        Files.createDirectories(file.toAbsolutePath().getParent());
        Path temp = Files.createTempFile(file.toAbsolutePath().getParent(), ".settings-", ".tmp");
        try {
            try (OutputStream out = Files.newOutputStream(temp)) {
                p.store(out, "FedMef node settings");
            }
            Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    /** Reads settings written by {@link #save}; null when the file does not exist. */
    public static NodeSettings load(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            return null;
        }
        Properties p = new Properties();
        try (InputStream in = Files.newInputStream(file)) {
            p.load(in);
        }
        try {
            return builder().superlink(p.getProperty("superlink"))
                    .caCertificate(p.getProperty("ca-certificate", ""))
                    .backend(Backend.valueOf(p.getProperty("backend", Backend.ORT.name()).toUpperCase(Locale.ROOT)))
                    .partition(p.getProperty("partition"))
                    .heartbeatSeconds(Double.parseDouble(p.getProperty("heartbeat-seconds", "30")))
                    .pollSeconds(Double.parseDouble(p.getProperty("poll-seconds", "3")))
                    .threads(Integer.parseInt(p.getProperty("threads", "0")))
                    .build();
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    @Override
    public String toString() {
        return superlink + (insecure() ? " (insecure)" : " (TLS)") + ", " + backend + ", partition " + partition;
    }

    public static final class Builder {
        private String superlink;
        private String caCertificate = "";
        private Backend backend = Backend.ORT;
        private String partition;
        private double heartbeatSeconds = 30;
        private double pollSeconds = 3;
        private int threads;

        private Builder() {
        }

        public Builder superlink(String value) {
            this.superlink = value == null ? null : value.trim();
            return this;
        }

        public Builder caCertificate(String path) {
            this.caCertificate = path == null ? "" : path.trim();
            return this;
        }

        public Builder backend(Backend value) {
            this.backend = value;
            return this;
        }

        public Builder partition(String value) {
            this.partition = value;
            return this;
        }

        public Builder heartbeatSeconds(double value) {
            this.heartbeatSeconds = value;
            return this;
        }

        public Builder pollSeconds(double value) {
            this.pollSeconds = value;
            return this;
        }

        public Builder threads(int value) {
            this.threads = value;
            return this;
        }

        public NodeSettings build() {
            return new NodeSettings(this);
        }
    }
}
