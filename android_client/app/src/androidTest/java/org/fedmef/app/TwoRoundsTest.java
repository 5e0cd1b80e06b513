package org.fedmef.app;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import android.Manifest;
import android.content.Context;
import android.os.Build;
import android.os.Bundle;
import androidx.test.core.app.ActivityScenario;
import androidx.test.core.app.ApplicationProvider;
import androidx.test.ext.junit.runners.AndroidJUnit4;
import androidx.test.platform.app.InstrumentationRegistry;
import java.util.List;
import org.fedmef.app.node.Backend;
import org.fedmef.app.node.NodeSettings;
import org.fedmef.app.node.StatusBoard;
import org.junit.Test;
import org.junit.runner.RunWith;

/**
 * End to end on a device: the app's node (foreground service, Keystore key, bundled partition,
 * ONNX Runtime) joins a real SuperLink and trains two FedMef rounds sent by the real ServerApp.
 * {@code scripts/emulator-flow.sh} starts the SuperLink on the host (reached at 127.0.0.1:9091
 * through {@code adb reverse}), runs this test, starts the federation once the node is active,
 * and afterwards checks the server's run directory.
 *
 * <p>Instrumentation arguments ({@code am instrument -e NAME VALUE}): {@code superlink}
 * (default 127.0.0.1:9091), {@code partition} (default: the first bundled one),
 * {@code timeoutSeconds} (default 900).
 */
@RunWith(AndroidJUnit4.class)
public class TwoRoundsTest {
    @Test
    public void trainsTwoRoundsWithOnnxRuntime() throws Exception {
        Bundle args = InstrumentationRegistry.getArguments();
        Context context = ApplicationProvider.getApplicationContext();
        long timeoutMillis = Long.parseLong(args.getString("timeoutSeconds", "900")) * 1000;
        String partition = args.getString("partition");
        List<String> partitions = AndroidDataSource.available(context);
        if (partition == null) {
            assertFalse("no bundled partition: build the APK with scripts/emulator-flow.sh", partitions.isEmpty());
            partition = partitions.get(0);
        } else if (!partition.contains("/") && !partition.startsWith(NodeSettings.ASSET_PREFIX)) {
            partition = NodeSettings.ASSET_PREFIX + partition;
        }
        assertTrue(partition + " is not among " + partitions, partitions.contains(partition));
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            InstrumentationRegistry.getInstrumentation().getUiAutomation()
                    .grantRuntimePermission(context.getPackageName(), Manifest.permission.POST_NOTIFICATIONS);
        }
        NodeSettings settings = NodeSettings.builder()
                .superlink(args.getString("superlink", "127.0.0.1:9091"))
                .backend(Backend.ORT)
                .partition(partition)
                .heartbeatSeconds(10)
                .pollSeconds(1)
                .build();
        StatusBoard board = NodeStatus.board();
        TrainingService.stop(context); // a node left "wanted" by an earlier run must not resume with its settings

        try (ActivityScenario<MainActivity> screen = ActivityScenario.launch(MainActivity.class)) {
            Exception[] failure = new Exception[1];
            screen.onActivity(activity -> { // started from a visible activity, as a user would
                try {
                    TrainingService.start(activity, settings);
                } catch (Exception e) {
                    failure[0] = e;
                }
            });
            if (failure[0] != null) {
                throw failure[0];
            }

            StatusBoard.Snapshot s = board.awaitUntil(x -> x.trainRounds >= 2 || x.finished(), timeoutMillis);
            String log = String.join("\n", s.log);
            assertFalse("the node failed: " + s.failure + "\n" + log, s.phase == StatusBoard.Phase.FAILED);
            assertEquals("train rounds answered\n" + log, 2, s.trainRounds);
            assertEquals("error replies\n" + log, 0, s.errorReplies);
            assertEquals(Backend.ORT.name(), s.backend);
            assertEquals("train", s.last.messageType());
            assertEquals("the server's round 2", 2, s.last.round());
            assertTrue("train loss " + s.last.loss(), s.last.loss() > 0 && !Double.isInfinite(s.last.loss()));
            assertTrue("examples " + s.last.examples(), s.last.examples() > 0);
            assertTrue(log, log.contains("train round 1: loss ") && log.contains("train round 2: loss "));

            // the ServerApp ends with a federated evaluation: answer it before leaving (not asserted:
            // the flow script checks the server's run directory)
            board.awaitUntil(x -> x.evaluateRounds >= 1 || x.finished(), 180_000);

            TrainingService.stop(context);
            StatusBoard.Snapshot end = board.awaitUntil(StatusBoard.Snapshot::finished, 60_000);
            assertEquals(String.join("\n", end.log), StatusBoard.Phase.STOPPED, end.phase);
        } finally {
            TrainingService.stop(context);
        }
    }
}
