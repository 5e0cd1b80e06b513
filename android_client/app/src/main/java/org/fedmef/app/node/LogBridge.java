package org.fedmef.app.node;

import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Shows what core logs ({@code java.util.logging} under {@code org.fedmef}: pulled instructions,
 * pushed replies, retries, heartbeat trouble) in the app's log, next to the app's own lines.
 */
public final class LogBridge extends Handler {
    /** Held strongly: java.util.logging keeps loggers only weakly, and would drop the handler with it. */
    private static final Logger ROOT = Logger.getLogger("org.fedmef");
    private final StatusBoard board;

    private LogBridge(StatusBoard board) {
        this.board = board;
        setLevel(Level.INFO);
    }

    /** Installs a bridge to {@code board}; close it to detach. */
    public static LogBridge install(StatusBoard board) {
        LogBridge bridge = new LogBridge(board);
        ROOT.addHandler(bridge);
        return bridge;
    }

    @Override
    public void publish(LogRecord record) {
        if (record == null || !isLoggable(record)) {
            return;
        }
        String name = record.getLoggerName() == null ? "" : record.getLoggerName();
        String shortName = name.substring(name.lastIndexOf('.') + 1);
        String level = record.getLevel().intValue() >= Level.WARNING.intValue() ? "WARN " : "";
        board.log(level + shortName + ": " + record.getMessage());
    }

    @Override
    public void flush() {
    }

    @Override
    public void close() {
        ROOT.removeHandler(this);
    }
}
