package org.fedmef.app;

import android.app.ActivityManager;
import android.content.Context;
import android.os.Debug;
import java.util.function.Supplier;
import org.fedmef.app.node.ProcStatus;
import org.fedmef.app.node.StatusBoard;

/**
 * Memory after a round: the process's peak resident set ({@code VmHWM}, which includes the native
 * allocations of ONNX Runtime / ExecuTorch that the Java heap never sees), its current resident
 * set, the native heap in use, and what the system still has available.
 */
final class MemoryProbe implements Supplier<StatusBoard.Memory> {
    private final ActivityManager activities;

    MemoryProbe(Context context) {
        this.activities = context.getSystemService(ActivityManager.class);
    }

    @Override
    public StatusBoard.Memory get() {
        ProcStatus proc = ProcStatus.read();
        long available = -1;
        if (activities != null) {
            ActivityManager.MemoryInfo info = new ActivityManager.MemoryInfo();
            activities.getMemoryInfo(info);
            available = info.availMem;
        }
        return new StatusBoard.Memory(proc.peakRss(), proc.rss(), Debug.getNativeHeapAllocatedSize(), available);
    }
}
