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
            "           [--threads N] [--ort-arena on|off] [--keep-registration] [--smoke]",
            "       java -jar fedmef-node.jar --replay INSTRUCTION-DIR --out DIR --data DIR [--store DIR]",
            "           [--message-type train|evaluate] [--repeat 1] [--threads N] [--ort-arena on|off]",
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
            "  --threads             ONNX Runtime intra-op threads; 0 = ONNX Runtime's choice (default: all cores)",
            "  --ort-arena           on (default): ONNX Runtime keeps a memory arena across steps; off: a step's",
            "                        memory is freed after each run (lower resident memory between rounds)",
            "  --keep-registration   on exit only deactivate; by default a node that registered itself also",
            "                        unregisters (as flwr's SuperNode does), after which flwr 1.41 refuses its key",
            "  --smoke               register, activate, heartbeat, pull once, deactivate, unregister; exit",
            "  --replay              offline, no SuperLink: answer the instruction stored in INSTRUCTION-DIR",
            "                        (plan.json, [manifest.json], state/<key>.npy, [artifacts/<file>]) with the",
            "                        same round code, write the reply to --out (<record>/<key>.npy, <record>.json)",
            "                        and replay.json (seconds and peak memory growth of each repetition)",
            "  --message-type        with --replay: train (default) or evaluate",
            "  --repeat              with --replay: answer the instruction N times (the first one opens the graphs)");

    private static final List<String> FLAGS = Arrays.asList("insecure", "smoke", "keep-registration", "help");
    private static final List<String> VALUED = Arrays.asList("superlink", "root-certificates", "key", "data", "store",
            "backend", "partition-id", "heartbeat-interval", "poll-interval", "linger", "max-rounds", "threads",
            "ort-arena", "replay", "out", "message-type", "repeat");
    /** What a live node needs and {@code --replay} (offline) must not be given. */
    private static final List<String> NETWORK = Arrays.asList("superlink", "insecure", "root-certificates", "key",
            "smoke", "keep-registration", "backend", "heartbeat-interval", "poll-interval", "linger", "max-rounds");
    private static final List<String> REPLAY_ONLY = Arrays.asList("out", "message-type", "repeat");

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
    final int threads;
    final boolean ortArena;
    final Path replay;
    final Path out;
    final String messageType;
    final int repeat;

    private Options(Map<String, String> v) {
        replay = v.containsKey("replay") ? Paths.get(required(v, "replay")) : null;
        threads = number(v, "threads", String.valueOf(Runtime.getRuntime().availableProcessors())).intValue();
        if (threads < 0) {
            throw new IllegalArgumentException("--threads must be >= 0");
        }
        String arena = v.containsKey("ort-arena") ? v.get("ort-arena") : "on";
        if (!"on".equals(arena) && !"off".equals(arena)) {
            throw new IllegalArgumentException("--ort-arena must be on or off, got '" + arena + "'");
        }
        ortArena = "on".equals(arena);
        data = v.containsKey("data") ? Paths.get(v.get("data")) : null;
        store = v.containsKey("store") ? Paths.get(v.get("store")) : null;
        partitionId = v.containsKey("partition-id") ? Integer.valueOf(number(v, "partition-id", "0").intValue()) : null;
        if (replay != null) {
            for (String name : NETWORK) {
                if (v.containsKey(name)) {
                    throw new IllegalArgumentException("--replay runs offline: --" + name + " does not apply");
                }
            }
            out = Paths.get(required(v, "out"));
            if (data == null) {
                throw new IllegalArgumentException("--data is required with --replay");
            }
            messageType = v.containsKey("message-type") ? v.get("message-type") : "train";
            if (!"train".equals(messageType) && !"evaluate".equals(messageType)) {
                throw new IllegalArgumentException("--message-type must be train or evaluate, got '" + messageType + "'");
            }
            repeat = number(v, "repeat", "1").intValue();
            if (repeat < 1) {
                throw new IllegalArgumentException("--repeat must be >= 1");
            }
            superlink = null;
            insecure = false;
            rootCertificates = null;
            key = null;
            smoke = false;
            keepRegistration = false;
            backend = "ort";
            heartbeatInterval = 0;
            pollInterval = 0;
            linger = 0;
            maxRounds = 0;
            return;
        }
        for (String name : REPLAY_ONLY) {
            if (v.containsKey(name)) {
                throw new IllegalArgumentException("--" + name + " applies to --replay only");
            }
        }
        out = null;
        messageType = null;
        repeat = 0;
        superlink = required(v, "superlink");
        insecure = v.containsKey("insecure");
        rootCertificates = v.containsKey("root-certificates") ? Paths.get(v.get("root-certificates")) : null;
        if (insecure == (rootCertificates != null)) {
            throw new IllegalArgumentException("give exactly one of --insecure and --root-certificates");
        }
        key = Paths.get(required(v, "key"));
        smoke = v.containsKey("smoke");
        keepRegistration = v.containsKey("keep-registration");
        backend = v.containsKey("backend") ? v.get("backend") : "ort";
        if (!"ort".equals(backend) && !"echo".equals(backend)) {
            throw new IllegalArgumentException("unknown --backend '" + backend + "' (this node runs: ort, echo)");
        }
        if (!smoke && "ort".equals(backend) && (data == null || store == null)) {
            throw new IllegalArgumentException("--data and --store are required (except with --smoke or --backend echo)");
        }
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
