package org.fedmef.node;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.fedmef.core.contract.ArtifactStore;
import org.fedmef.core.contract.OrtTrainer;
import org.fedmef.core.contract.PartitionDataSource;
import org.fedmef.core.contract.RoundRunner;
import org.fedmef.core.contract.Ticker;
import org.fedmef.core.fleet.FleetClient;
import org.fedmef.core.fleet.FleetTransport;
import org.fedmef.core.fleet.MessageHandler;
import org.fedmef.core.fleet.NodeKeys;
import org.fedmef.core.fleet.NodeLoop;
import org.fedmef.core.fleet.OkHttpTransport;

/**
 * The "virtual phone": a FedMef client taking part in a Flower 1.41 federation as a real
 * SuperNode, over the same code the Android app uses ({@code fedmef-core}); or, with {@code --replay},
 * one stored instruction answered offline ({@link Replay}). Exits 0 after a clean stop (SIGINT/SIGTERM,
 * {@code --max-rounds}, {@code --smoke}) or replay, 2 on bad arguments, 1 on failure.
 */
public final class Main {
    /** Set by the shutdown hook: System.exit would then block until the hook ends (a deadlock). */
    private static volatile boolean shuttingDown;

    private Main() {
    }

    public static void main(String[] args) {
        System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tT %4$s %3$s: %5$s%6$s%n");
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println((e.getMessage().isEmpty() ? "" : "error: " + e.getMessage() + "\n") + Options.USAGE);
            System.exit(e.getMessage().isEmpty() ? 0 : 2);
            return;
        }
        int code;
        try {
            code = run(options);
        } catch (Exception e) {
            System.err.println("fedmef-node: " + e);
            code = 1;
        }
        if (!shuttingDown) {
            System.exit(code);
        }
    }

    static int run(Options o) throws Exception {
        if (o.replay != null) {
            return Replay.run(o);
        }
        boolean created = !Files.exists(o.key);
        NodeKeys keys = NodeKeys.loadOrCreate(o.key);
        Path publicKey = o.key.resolveSibling(o.key.getFileName() + ".pub");
        if (created) { // as ssh-keygen and flwr's tooling do: KEY.pub for `flwr supernode register KEY.pub`
            Files.write(publicKey, (keys.openSshPublicKey() + "\n").getBytes(StandardCharsets.US_ASCII));
        }
        System.out.println((created ? "created " : "using ") + o.key + "; public key (for `flwr supernode register`):");
        System.out.println(keys.openSshPublicKey());
        FleetTransport transport = o.insecure ? OkHttpTransport.insecure(o.superlink)
                : OkHttpTransport.tls(o.superlink, o.rootCertificates);
        FleetClient client = FleetClient.builder(transport, keys).heartbeatInterval(o.heartbeatInterval).build();
        if (o.smoke) {
            System.out.println("smoke: " + NodeLoop.smoke(client));
            return 0;
        }
        if ("echo".equals(o.backend)) {
            serve(o, client, new EchoHandler());
            return 0;
        }
        checkPartition(o.data, o.partitionId);
        try (RoundRunner runner = new RoundRunner(PartitionDataSource.open(o.data), new ArtifactStore(o.store),
                new OrtTrainer(o.threads, o.ortArena), Ticker.system())) {
            serve(o, client, runner);
        }
        return 0;
    }

    /** Runs the node loop until it ends or the process is told to stop (SIGINT/SIGTERM). */
    private static void serve(Options o, FleetClient client, MessageHandler handler) throws Exception {
        NodeLoop loop = new NodeLoop(client, handler, millis(o.pollInterval), millis(o.linger), o.maxRounds,
                !o.keepRegistration);
        Thread main = Thread.currentThread();
        Thread hook = new Thread(() -> {
            shuttingDown = true;
            loop.stop();
            try {
                main.join(15_000); // let the loop deactivate (and unregister) before the JVM halts
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        }, "fedmef-node-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        int handled = loop.run();
        System.out.println("answered " + handled + " instruction(s)");
    }

    private static void checkPartition(Path data, Integer partitionId) throws IOException {
        if (partitionId == null) {
            return;
        }
        String json = new String(Files.readAllBytes(data.resolve("partition.json")), StandardCharsets.UTF_8);
        JsonObject info = JsonParser.parseString(json).getAsJsonObject();
        if (!info.has("partition_id") || info.get("partition_id").getAsInt() != partitionId) {
            throw new IOException(data + " holds partition " + info.get("partition_id") + ", not " + partitionId);
        }
    }

    private static long millis(double seconds) {
        return (long) (seconds * 1000);
    }
}
