package org.fedmef.core.fleet;

import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;
import org.fedmef.core.records.RecordDict;

/**
 * A SuperNode's life: register (when allowed) and activate, heartbeat in the background, poll for
 * instructions, hand each to the {@link MessageHandler} and push its reply (or an error reply,
 * code 1, when it throws), until {@link #stop()} or the instruction limit; then stay online a
 * little longer (the SuperLink must still fetch the last reply: a node that goes offline first
 * has its reply replaced by NODE_UNAVAILABLE), deactivate, and unregister if it registered itself.
 */
public final class NodeLoop {
    /** Flower error code the FedMef protocol uses for a client that could not do its work. */
    public static final int CLIENT_ERROR = 1;
    private static final Logger LOG = Logger.getLogger(NodeLoop.class.getName());

    private final FleetClient client;
    private final MessageHandler handler;
    private final long pollMillis;
    private final long lingerMillis;
    private final int maxInstructions;
    private final boolean unregisterOnExit;
    private final CountDownLatch stopped = new CountDownLatch(1);

    /**
     * @param pollMillis      wait between PullMessages calls when nothing was waiting
     * @param lingerMillis    time to stay online after the last instruction before deactivating
     * @param maxInstructions stop after this many instructions (0: never)
     * @param unregisterOnExit whether a node that registered itself unregisters when it leaves, as
     *                        flwr's own SuperNode does; flwr 1.41 never lets that key register again,
     *                        so a node keeping its key file across runs passes false
     */
    public NodeLoop(FleetClient client, MessageHandler handler, long pollMillis, long lingerMillis, int maxInstructions,
            boolean unregisterOnExit) {
        this.client = client;
        this.handler = handler;
        this.pollMillis = pollMillis;
        this.lingerMillis = lingerMillis;
        this.maxInstructions = maxInstructions;
        this.unregisterOnExit = unregisterOnExit;
    }

    /** Asks {@link #run()} to finish (from another thread, e.g. a shutdown hook). */
    public void stop() {
        stopped.countDown();
    }

    /** Runs the node; returns how many instructions it answered. */
    public int run() throws IOException, InterruptedException {
        boolean registered = client.register();
        long nodeId = client.activate();
        LOG.info("node " + Long.toUnsignedString(nodeId) + " active" + (registered ? " (self-registered)" : ""));
        client.startHeartbeats();
        int handled = 0;
        try {
            while (!isStopped() && (maxInstructions == 0 || handled < maxInstructions)) {
                Instruction instruction = pullQuietly();
                if (instruction == null) {
                    stopped.await(pollMillis, TimeUnit.MILLISECONDS);
                    continue;
                }
                answer(instruction);
                handled++;
            }
            if (!isStopped()) {
                LOG.info("answered " + handled + " instruction(s); staying online " + lingerMillis + " ms");
                stopped.await(lingerMillis, TimeUnit.MILLISECONDS);
            }
        } finally {
            leave(registered && unregisterOnExit);
        }
        return handled;
    }

    /**
     * A connectivity check: register, activate, one heartbeat, one pull (an instruction, if any,
     * is not answered), deactivate, unregister. Returns a one-line summary.
     */
    public static String smoke(FleetClient client) throws IOException, InterruptedException {
        boolean registered = client.register();
        long nodeId = client.activate();
        StringBuilder out = new StringBuilder("node ").append(Long.toUnsignedString(nodeId))
                .append(registered ? " registered" : " (already registered)").append(", activated");
        try {
            out.append(", heartbeat success=").append(client.heartbeat());
            Instruction pulled = client.pullMessage();
            out.append(", pulled ").append(pulled == null ? "nothing" : pulled.toString());
        } finally {
            client.deactivate();
            out.append(", deactivated");
            if (registered) {
                client.unregister();
                out.append(", unregistered");
            }
        }
        return out.toString();
    }

    private void answer(Instruction instruction) {
        LOG.info("instruction " + instruction);
        try {
            if (instruction.content() == null) {
                client.pushError(instruction, CLIENT_ERROR, "cannot read the instruction: " + instruction.decodeError());
                return;
            }
            RecordDict reply;
            try {
                reply = handler.handle(instruction.messageType(), instruction.content());
            } catch (Exception e) {
                String reason = oneLine(e);
                LOG.warning(instruction.messageType() + " failed: " + reason);
                client.pushError(instruction, CLIENT_ERROR, reason);
                return;
            }
            if (reply == null) {
                client.pushError(instruction, CLIENT_ERROR, "the client produced no reply content");
                return;
            }
            client.pushReply(instruction, reply);
        } catch (IOException e) {
            LOG.warning("could not push the reply to " + instruction + ": " + e.getMessage());
        }
    }

    private Instruction pullQuietly() throws InterruptedException {
        try {
            return client.pullMessage();
        } catch (IOException e) {
            LOG.warning("pull failed: " + e.getMessage());
            return null;
        }
    }

    private void leave(boolean unregister) {
        try {
            client.deactivate();
            if (unregister) {
                client.unregister();
            }
            LOG.info("node left" + (unregister ? " and unregistered" : ""));
        } catch (IOException e) {
            LOG.warning("could not leave cleanly: " + e.getMessage());
        } finally {
            client.close();
        }
    }

    private boolean isStopped() {
        return stopped.getCount() == 0;
    }

    private static String oneLine(Exception e) {
        String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return message.replace('\n', ' ').replace('\r', ' ');
    }
}
