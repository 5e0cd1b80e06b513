package org.fedmef.app;

import androidx.lifecycle.LiveData;
import androidx.lifecycle.MutableLiveData;
import org.fedmef.app.node.StatusBoard;

/**
 * The process's one {@link StatusBoard}: the node thread writes it, the screen observes it as
 * LiveData (posted to the main thread), the instrumented test waits on it directly.
 */
public final class NodeStatus {
    private static final StatusBoard BOARD = new StatusBoard();
    private static final MutableLiveData<StatusBoard.Snapshot> LIVE = new MutableLiveData<>(BOARD.snapshot());

    static {
        BOARD.observe(LIVE::postValue);
    }

    private NodeStatus() {
    }

    public static StatusBoard board() {
        return BOARD;
    }

    public static LiveData<StatusBoard.Snapshot> live() {
        return LIVE;
    }
}
