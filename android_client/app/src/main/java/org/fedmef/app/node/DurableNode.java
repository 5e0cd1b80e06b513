package org.fedmef.app.node;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.logging.Logger;
import org.fedmef.app.node.StatusBoard.Phase;
import org.fedmef.core.fleet.FleetClient;
import org.fedmef.core.fleet.FleetException;
import org.fedmef.core.fleet.Instruction;
import org.fedmef.core.fleet.MessageHandler;
import org.fedmef.core.fleet.NodeLoop;
import org.fedmef.core.records.RecordDict;

/**
 * The phone's SuperNode life on core's {@link FleetClient}: register (when allowed) and activate,
 * heartbeat, poll, answer each instruction with the {@link MessageHandler} (core's RoundRunner) —
 * like core's {@link NodeLoop}, plus what a phone needs and NodeLoop has no hook for:
 *
 * <ul>
 *   <li>the reply is written to the {@link ReplyJournal} before it is pushed, and a reply left
 *       there by a killed process is pushed first on the next start, while its instruction's TTL
 *       lasts (then dropped, as is a reply the SuperLink refuses);</li>
 *   <li>the node id and registration are kept in a {@link NodeState} file;</li>
 *   <li>progress goes to a {@link StatusBoard} (phase, answered rounds, memory after each);</li>
 *   <li>the node never unregisters (flwr 1.41 burns an unregistered key, and the Keystore key
 *       must serve again after a restart).</li>
 * </ul>
 */
public final class DurableNode {
    private static final Logger LOG = Logger.getLogger(DurableNode.class.getName());

    private final FleetClient client;
    private final MessageHandler handler;
    private final ReplyJournal journal;
    private final Path stateFile;
    private final String superlink;
    private final StatusBoard board;
    private final Supplier<StatusBoard.Memory> memory;
    private final Clock clock;
    private final long pollMillis;
    private final long lingerMillis;
    private final CountDownLatch stopped = new CountDownLatch(1);
    private volatile long lastPushMillis;

    /**
     * @param stateFile    where the {@link NodeState} lives
     * @param memory       memory readings taken after each answered instruction
     * @param pollMillis   wait between PullMessages calls when nothing was waiting
     * @param lingerMillis on stop, stay online this long after the last push (the SuperLink must
     *                     still hand the reply to the ServerApp; a node that goes offline first
     *                     has its reply replaced by NODE_UNAVAILABLE)
     */
    public DurableNode(FleetClient client, MessageHandler handler, ReplyJournal journal, Path stateFile,
            String superlink, StatusBoard board, Supplier<StatusBoard.Memory> memory, Clock clock, long pollMillis,
            long lingerMillis) {
        this.client = client;
        this.handler = handler;
        this.journal = journal;
        this.stateFile = stateFile;
        this.superlink = superlink;
        this.board = board;
        this.memory = memory;
        this.clock = clock;
        this.pollMillis = pollMillis;
        this.lingerMillis = lingerMillis;
    }

    /** Asks {@link #run()} to finish after the instruction in hand (from any thread). */
    public void stop() {
        stopped.countDown();
    }

    public boolean stopRequested() {
        return stopped.getCount() == 0;
    }

    /** Runs the node until {@link #stop()}; returns how many instructions it answered. */
    public int run() throws IOException, InterruptedException {
        board.phase(Phase.STARTING, "joining " + superlink);
        boolean selfRegistered = client.register();
        long nodeId = client.activate();
        NodeState state = new NodeState(superlink, nodeId, true);
        state.save(stateFile);
        board.node(state.toString());
        client.startHeartbeats();
        int answered = 0;
        try {
            board.phase(Phase.ONLINE, "node " + Long.toUnsignedString(nodeId) + " active"
                    + (selfRegistered ? " (registered itself)" : " (key already registered)"));
            while (!stopRequested()) {
                pushPending(nodeId);
                Instruction instruction = pullQuietly();
                if (instruction == null) {
                    stopped.await(pollMillis, TimeUnit.MILLISECONDS);
                    continue;
                }
                answer(instruction);
                answered++;
            }
            board.phase(Phase.STOPPING, "answered " + answered + " instruction(s)");
            long linger = lastPushMillis + lingerMillis - clock.millis();
            if (lastPushMillis > 0 && linger > 0) {
                Thread.sleep(Math.min(linger, lingerMillis));
            }
        } finally {
            leave();
        }
        return answered;
    }

    private void answer(Instruction instruction) throws IOException {
        board.phase(Phase.WORKING, "received " + instruction);
        RecordDict content = instruction.content();
        if (content == null) {
            String reason = "cannot read the instruction: " + instruction.decodeError();
            pushErrorQuietly(instruction, reason);
            board.answered(RoundSummary.failed(instruction.messageType(), null, reason), memory.get());
            board.phase(Phase.ONLINE, "");
            return;
        }
        RecordDict reply;
        try {
            reply = handler.handle(instruction.messageType(), content);
            if (reply == null) {
                throw new IllegalStateException("the client produced no reply content");
            }
        } catch (Exception e) {
            String reason = oneLine(e);
            pushErrorQuietly(instruction, reason);
            board.answered(RoundSummary.failed(instruction.messageType(), content, reason), memory.get());
            board.phase(Phase.ONLINE, "");
            return;
        }
        try {
            journal.save(instruction.metadata(), reply, instruction.receivedAtMillis());
        } catch (IOException e) {
            LOG.warning("could not journal the reply (pushing it anyway): " + e.getMessage());
        }
        board.answered(RoundSummary.of(instruction.messageType(), content, reply), memory.get());
        push(instruction, reply, false);
        board.phase(Phase.ONLINE, "");
    }

    /** Pushes a reply left by an earlier push that failed or by a process that died. */
    private void pushPending(long nodeId) throws IOException {
        ReplyJournal.Pending pending = journal.load();
        if (pending == null) {
            return;
        }
        String what = pending.instruction().getMessageType() + " " + pending.instruction().getMessageId();
        if (pending.expired(clock.millis())) {
            board.log("dropping the saved reply to " + what + ": the instruction's TTL has expired");
            journal.clear();
            return;
        }
        if (pending.instruction().getDstNodeId() != nodeId) {
            board.log("dropping the saved reply to " + what + ": it was for node "
                    + Long.toUnsignedString(pending.instruction().getDstNodeId()) + ", this key is node "
                    + Long.toUnsignedString(nodeId));
            journal.clear();
            return;
        }
        board.log("pushing the saved reply to " + what);
        push(Instruction.restore(pending.instruction(), null, pending.receivedAtMillis()), pending.reply(), true);
    }

    private void push(Instruction instruction, RecordDict reply, boolean saved) throws IOException {
        try {
            client.pushReply(instruction, reply);
            lastPushMillis = clock.millis();
            journal.clear();
            if (saved) {
                board.log("saved reply pushed");
            }
        } catch (FleetException e) {
            if (e.retryable()) {
                LOG.warning("push failed, the reply stays saved for another try: " + e.getMessage());
            } else {
                board.log("the SuperLink refused the reply (" + e.getMessage() + "); dropping it");
                journal.clear();
            }
        } catch (IOException e) {
            LOG.warning("push failed, the reply stays saved for another try: " + e.getMessage());
        }
    }

    private void pushErrorQuietly(Instruction instruction, String reason) {
        try {
            client.pushError(instruction, NodeLoop.CLIENT_ERROR, reason);
            lastPushMillis = clock.millis();
        } catch (IOException e) {
            LOG.warning("could not push the error reply to " + instruction + ": " + e.getMessage());
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

    private void leave() {
        try {
            client.deactivate();
            board.log("node deactivated");
        } catch (IOException e) {
            LOG.warning("could not deactivate cleanly: " + e.getMessage());
        } finally {
            client.close();
        }
    }

    private static String oneLine(Exception e) {
        String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return message.replace('\n', ' ').replace('\r', ' ');
    }
}
