package org.fedmef.node;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The node's command line, parsed and checked (every error is an IllegalArgumentException). */
final class Options {
    static final String USAGE = String.join("\n",
            "usage: java -jar fedmef-node.jar --superlink HOST:PORT (--insecure | --root-certificates CA.pem)",
            "           --key NODE-KEY.pem [--data DIR] [--backend ort] [--store DIR] [--partition-id N]",
            "           [--heartbeat-interval 30] [--poll-interval 2] [--linger 20] [--max-rounds N]",
            "           [--keep-registration] [--smoke]",
            "  --superlink           the SuperLink's Fleet API address (its --port, default 8000)",
            "  --insecure            plain http; or --root-certificates: https trusting this CA",
            "  --key                 PKCS#8 PEM node key; created when absent, with KEY.pub: its OpenSSH public",
            "                        key for `flwr supernode register KEY.pub` when SuperNode auth is on",
            "  --data                partition directory (train_x.npy, train_y.npy, val_*.npy, partition.json)",
            "  --partition-id        refuse to start unless --data holds this partition",
            "  --backend             ort (ONNX Runtime training), or echo (no training: replies with the",
            "                        received v/ and d/ arrays; a protocol and deployment check)",
            "  --store               where artifacts received from the server are kept",
            "  --heartbeat-interval  seconds, [10, 1800] (flwr's default 30)",
            "  --poll-interval       seconds between polls when no instruction waits",
            "  --linger              seconds to stay online after the last instruction",
            "  --max-rounds          exit after answering N instructions (train or evaluate); 0 = never",
            "  --keep-registration   on exit only deactivate; by default a node that registered itself also",
            "                        unregisters (as flwr's SuperNode does), after which flwr 1.41 refuses its key",
            "  --smoke               register, activate, heartbeat, pull once, deactivate, unregister; exit");

    private static final List<String> FLAGS = Arrays.asList("insecure", "smoke", "keep-registration", "help");
    private static final List<String> VALUED = Arrays.asList("superlink", "root-certificates", "key", "data", "store",
            "backend", "partition-id", "heartbeat-interval", "poll-interval", "linger", "max-rounds");

    final String superlink;
    final boolean insecure;
    final Path rootCertificates;
    final Path key;
    final Path data;
    final Path store;
    final String backend;
    final Integer partitionId;
    final double heartbeatInterval;
    final double pollInterval;
    final double linger;
    final int maxRounds;
    final boolean smoke;
    final boolean keepRegistration;

    private Options(Map<String, String> v) {
        superlink = required(v, "superlink");
        insecure = v.containsKey("insecure");
        rootCertificates = v.containsKey("root-certificates") ? Paths.get(v.get("root-certificates")) : null;
        if (insecure == (rootCertificates != null)) {
            throw new IllegalArgumentException("give exactly one of --insecure and --root-certificates");
        }
        key = Paths.get(required(v, "key"));
        smoke = v.containsKey("smoke");
        keepRegistration = v.containsKey("keep-registration");
        data = v.containsKey("data") ? Paths.get(v.get("data")) : null;
        store = v.containsKey("store") ? Paths.get(v.get("store")) : null;
        backend = v.containsKey("backend") ? v.get("backend") : "ort";
        if (!"ort".equals(backend) && !"echo".equals(backend)) {
            throw new IllegalArgumentException("unknown --backend '" + backend + "' (this node runs: ort, echo)");
        }
        if (!smoke && "ort".equals(backend) && (data == null || store == null)) {
            throw new IllegalArgumentException("--data and --store are required (except with --smoke or --backend echo)");
        }
        partitionId = v.containsKey("partition-id") ? Integer.valueOf(number(v, "partition-id", "0").intValue()) : null;
        heartbeatInterval = number(v, "heartbeat-interval", "30").doubleValue();
        pollInterval = number(v, "poll-interval", "2").doubleValue();
        linger = number(v, "linger", "20").doubleValue();
        maxRounds = number(v, "max-rounds", "0").intValue();
        if (pollInterval <= 0 || linger < 0 || maxRounds < 0) {
            throw new IllegalArgumentException("--poll-interval must be > 0, --linger and --max-rounds >= 0");
        }
    }

    static Options parse(String[] args) {
        Map<String, String> values = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + a + "'");
            }
            String name = a.substring(2);
            int eq = name.indexOf('=');
            if (eq >= 0) {
                values.put(name.substring(0, eq), name.substring(eq + 1));
            } else if (FLAGS.contains(name)) {
                values.put(name, "");
            } else if (i + 1 < args.length) {
                values.put(name, args[++i]);
            } else {
                throw new IllegalArgumentException("--" + name + " needs a value");
            }
        }
        if (values.containsKey("help")) {
            throw new IllegalArgumentException("");
        }
        for (String name : values.keySet()) {
            if (!FLAGS.contains(name) && !VALUED.contains(name)) {
                throw new IllegalArgumentException("unknown option --" + name);
            }
        }
        return new Options(values);
    }

    private static String required(Map<String, String> v, String name) {
        String value = v.get(name);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return value;
    }

    private static Double number(Map<String, String> v, String name, String fallback) {
        String text = v.containsKey(name) ? v.get(name) : fallback;
        try {
            return Double.valueOf(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be a number, got '" + text + "'");
        }
    }
}
