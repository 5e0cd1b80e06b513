package org.fedmef.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Paths;
import org.junit.jupiter.api.Test;

/** The command line: a live node's options, the offline {@code --replay} mode, and what each refuses. */
class OptionsTest {
    private static Options parse(String... args) {
        return Options.parse(args);
    }

    private static String error(String... args) {
        return assertThrows(IllegalArgumentException.class, () -> Options.parse(args)).getMessage();
    }

    @Test
    void aLiveNodeTrainsWithEveryCoreAndTheArenaByDefault() {
        Options o = parse("--superlink", "127.0.0.1:9091", "--insecure", "--key", "k.pem", "--data", "d", "--store", "s");
        assertEquals("127.0.0.1:9091", o.superlink);
        assertEquals(Runtime.getRuntime().availableProcessors(), o.threads);
        assertTrue(o.ortArena);
        assertNull(o.replay);
        assertEquals("ort", o.backend);
        Options tuned = parse("--superlink", "h:1", "--insecure", "--key", "k", "--data", "d", "--store", "s",
                "--threads", "1", "--ort-arena=off");
        assertEquals(1, tuned.threads);
        assertFalse(tuned.ortArena);
    }

    @Test
    void aLiveNodeRefusesReplayOptionsAndBadValues() {
        String[] live = {"--superlink", "h:1", "--insecure", "--key", "k", "--data", "d", "--store", "s"};
        assertEquals("--out applies to --replay only", error(concat(live, "--out", "o")));
        assertEquals("--repeat applies to --replay only", error(concat(live, "--repeat", "2")));
        assertEquals("--ort-arena must be on or off, got 'maybe'", error(concat(live, "--ort-arena", "maybe")));
        assertEquals("--threads must be >= 0", error(concat(live, "--threads", "-1")));
        assertEquals("--superlink is required", error("--insecure", "--key", "k"));
    }

    @Test
    void replayNeedsNoSuperLinkButAnInstructionAnOutputAndData() {
        Options o = parse("--replay", "in", "--out", "out", "--data", "part", "--threads", "1");
        assertEquals(Paths.get("in"), o.replay);
        assertEquals(Paths.get("out"), o.out);
        assertEquals(Paths.get("part"), o.data);
        assertNull(o.store);
        assertEquals("train", o.messageType);
        assertEquals(1, o.repeat);
        assertEquals(1, o.threads);
        Options evaluate = parse("--replay", "in", "--out", "out", "--data", "part", "--message-type", "evaluate",
                "--repeat", "3", "--store", "s", "--ort-arena", "off");
        assertEquals("evaluate", evaluate.messageType);
        assertEquals(3, evaluate.repeat);
        assertEquals(Paths.get("s"), evaluate.store);
        assertFalse(evaluate.ortArena);
    }

    @Test
    void replayRefusesNetworkOptionsAndBadValues() {
        assertEquals("--replay runs offline: --superlink does not apply",
                error("--replay", "in", "--out", "o", "--data", "d", "--superlink", "h:1"));
        assertEquals("--replay runs offline: --key does not apply",
                error("--replay", "in", "--out", "o", "--data", "d", "--key", "k"));
        assertEquals("--out is required", error("--replay", "in", "--data", "d"));
        assertEquals("--data is required with --replay", error("--replay", "in", "--out", "o"));
        assertEquals("--message-type must be train or evaluate, got 'query'",
                error("--replay", "in", "--out", "o", "--data", "d", "--message-type", "query"));
        assertEquals("--repeat must be >= 1", error("--replay", "in", "--out", "o", "--data", "d", "--repeat", "0"));
    }

    private static String[] concat(String[] head, String... tail) {
        String[] out = new String[head.length + tail.length];
        System.arraycopy(head, 0, out, 0, head.length);
        System.arraycopy(tail, 0, out, head.length, tail.length);
        return out;
    }
}
