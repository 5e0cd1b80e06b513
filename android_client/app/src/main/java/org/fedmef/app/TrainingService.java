package org.fedmef.app;

import android.Manifest;
import android.app.Notification;
import android.app.NotificationChannel;
import android.app.NotificationManager;
import android.app.PendingIntent;
import android.app.Service;
import android.content.Context;
import android.content.Intent;
import android.content.pm.PackageManager;
import android.content.pm.ServiceInfo;
import android.os.Build;
import android.os.Handler;
import android.os.IBinder;
import android.os.Looper;
import android.os.PowerManager;
import androidx.core.app.NotificationCompat;
import androidx.core.app.NotificationManagerCompat;
import androidx.core.app.ServiceCompat;
import androidx.core.content.ContextCompat;
import java.io.IOException;
import java.nio.file.Paths;
import java.time.Clock;
import java.util.Locale;
import java.util.function.Consumer;
import org.fedmef.app.node.DurableNode;
import org.fedmef.app.node.LogBridge;
import org.fedmef.app.node.NodeSettings;
import org.fedmef.app.node.ReplyJournal;
import org.fedmef.app.node.StatusBoard;
import org.fedmef.app.node.StatusBoard.Phase;
import org.fedmef.core.contract.ArtifactStore;
import org.fedmef.core.contract.RoundRunner;
import org.fedmef.core.contract.Ticker;
import org.fedmef.core.fleet.FleetClient;
import org.fedmef.core.fleet.FleetTransport;
import org.fedmef.core.fleet.NodeKeys;
import org.fedmef.core.fleet.OkHttpTransport;

/**
 * Runs the node (core's FleetClient and RoundRunner inside the app's {@link DurableNode}) on a
 * background thread, as a foreground service of type {@code dataSync}: the SuperLink decides when
 * rounds come, and the node must keep heartbeating between them, so the process has to stay alive
 * and awake for as long as the user keeps the node on (a partial wake lock is held meanwhile).
 *
 * <p>Process death: the settings and a "wanted" marker are on app storage and the service is
 * sticky, so Android restarts it (or the next app start does) and the node pushes a reply left in
 * its journal before pulling anything new.
 */
public final class TrainingService extends Service {
    static final String ACTION_START = "org.fedmef.app.action.START";
    static final String ACTION_STOP = "org.fedmef.app.action.STOP";
    private static final String CHANNEL = "training";
    private static final int NOTIFICATION = 1;
    private static final long WAKE_LOCK_MAX_MILLIS = 12L * 3600 * 1000;
    private static final long LINGER_MILLIS = 5000;

    private final Handler main = new Handler(Looper.getMainLooper());
    private final Consumer<StatusBoard.Snapshot> notifier = this::showProgress;
    private Thread worker;
    private volatile DurableNode node;
    private volatile boolean stopRequested;
    private String shown = "";

    /** Saves {@code settings}, marks the node wanted and starts the service (from a visible activity). */
    public static void start(Context context, NodeSettings settings) throws IOException {
        settings.save(AppFiles.settings(context));
        AppFiles.setWanted(context, true);
        ContextCompat.startForegroundService(context, new Intent(context, TrainingService.class).setAction(ACTION_START));
    }

    /** Clears the "wanted" marker and asks a running node to leave after the instruction in hand. */
    public static void stop(Context context) throws IOException {
        AppFiles.setWanted(context, false);
        if (NodeStatus.board().snapshot().running()) {
            context.startService(new Intent(context, TrainingService.class).setAction(ACTION_STOP));
        }
    }

    @Override
    public void onCreate() {
        super.onCreate();
        NotificationManager manager = getSystemService(NotificationManager.class);
        if (manager != null) {
            manager.createNotificationChannel(new NotificationChannel(CHANNEL, getString(R.string.channel_training),
                    NotificationManager.IMPORTANCE_LOW));
        }
    }

    @Override
    public int onStartCommand(Intent intent, int flags, int startId) {
        if (intent != null && ACTION_STOP.equals(intent.getAction())) { // sent with startService: no foreground duty
            requestStop();
            if (worker == null || !worker.isAlive()) {
                stopSelf(startId);
            }
            return START_NOT_STICKY;
        }
        // after startForegroundService Android requires startForeground soon, whatever happens next
        try {
            ServiceCompat.startForeground(this, NOTIFICATION, notification(getString(R.string.status_starting)),
                    Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q ? ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC : 0);
        } catch (RuntimeException refused) { // ForegroundServiceStartNotAllowedException (API 31+) and kin
            NodeStatus.board().phase(Phase.FAILED, "Android refused the foreground service: " + refused.getMessage()
                    + " (open the app to resume)");
            stopSelf(startId);
            return START_NOT_STICKY;
        }
        NodeSettings settings;
        try {
            settings = AppFiles.wanted(this) ? NodeSettings.load(AppFiles.settings(this)) : null;
        } catch (IOException e) {
            NodeStatus.board().phase(Phase.FAILED, "unreadable settings: " + e.getMessage());
            settings = null;
        }
        if (settings == null) {
            finish();
            return START_NOT_STICKY;
        }
        if (worker == null || !worker.isAlive()) {
            stopRequested = false;
            NodeSettings chosen = settings;
            worker = new Thread(() -> runNode(chosen), "fedmef-node");
            worker.start();
        }
        return START_STICKY;
    }

    /** API 35+: the daily time budget of dataSync services is used up. */
    @Override
    public void onTimeout(int startId, int fgsType) {
        NodeStatus.board().log("Android ended the foreground service's time budget: leaving the federation");
        requestStop();
    }

    @Override
    public void onDestroy() {
        requestStop();
        super.onDestroy();
    }

    @Override
    public IBinder onBind(Intent intent) {
        return null;
    }

    private void runNode(NodeSettings settings) {
        StatusBoard board = NodeStatus.board();
        board.starting(settings.backend().name());
        board.observe(notifier);
        LogBridge bridge = LogBridge.install(board);
        PowerManager.WakeLock wake = wakeLock();
        RoundRunner runner = null;
        try {
            NodeKeys keys = AndroidKeystoreKeys.nodeKeys();
            board.log("node key (register with `flwr supernode register` when the SuperLink requires it): "
                    + keys.openSshPublicKey());
            FleetTransport transport = settings.insecure() ? OkHttpTransport.insecure(settings.superlink())
                    : OkHttpTransport.tls(settings.superlink(), Paths.get(settings.caCertificate()));
            FleetClient client = FleetClient.builder(transport, keys).heartbeatInterval(settings.heartbeatSeconds())
                    .build();
            runner = new RoundRunner(AndroidDataSource.open(this, settings.partition()),
                    new ArtifactStore(AppFiles.artifacts(this)), settings.backend().trainer(settings.threads()),
                    Ticker.system());
            DurableNode durable = new DurableNode(client, runner, new ReplyJournal(AppFiles.journal(this)),
                    AppFiles.nodeState(this), settings.superlink(), board, new MemoryProbe(this), Clock.systemUTC(),
                    settings.pollMillis(), LINGER_MILLIS);
            node = durable;
            if (stopRequested) {
                durable.stop();
            }
            durable.run();
            board.phase(Phase.STOPPED, "node stopped");
        } catch (InterruptedException e) {
            board.phase(Phase.STOPPED, "interrupted");
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            String reason = e.getMessage() == null ? e.toString() : e.getMessage();
            board.phase(Phase.FAILED, reason.replace('\n', ' '));
            try {
                AppFiles.setWanted(this, false); // do not restart into the same failure
            } catch (IOException ignored) {
                // the marker stays: the next start fails the same way and says so
            }
        } finally {
            node = null;
            board.unobserve(notifier);
            if (runner != null) {
                runner.close();
            }
            if (wake.isHeld()) {
                wake.release();
            }
            bridge.close();
            Thread self = Thread.currentThread();
            main.post(() -> {
                if (worker == self) { // not a node started again meanwhile
                    finish();
                }
            });
        }
    }

    private void requestStop() {
        stopRequested = true;
        DurableNode running = node;
        if (running != null) {
            running.stop();
        }
    }

    private void finish() {
        ServiceCompat.stopForeground(this, ServiceCompat.STOP_FOREGROUND_REMOVE);
        stopSelf();
    }

    private PowerManager.WakeLock wakeLock() {
        PowerManager power = getSystemService(PowerManager.class);
        PowerManager.WakeLock wake = power.newWakeLock(PowerManager.PARTIAL_WAKE_LOCK, "fedmef:node");
        wake.setReferenceCounted(false);
        wake.acquire(WAKE_LOCK_MAX_MILLIS);
        return wake;
    }

    /** Updates the notification when the round count or phase changes (not for every log line). */
    private synchronized void showProgress(StatusBoard.Snapshot s) {
        String text = String.format(Locale.ROOT, "%s · %d train rounds%s", s.phase.name().toLowerCase(Locale.ROOT),
                s.trainRounds, s.last == null ? "" : " · last: " + s.last);
        if (text.equals(shown) || s.finished()) {
            return;
        }
        shown = text;
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU && ContextCompat.checkSelfPermission(this,
                Manifest.permission.POST_NOTIFICATIONS) != PackageManager.PERMISSION_GRANTED) {
            return; // the service runs all the same; its notification is just not shown
        }
        NotificationManagerCompat.from(this).notify(NOTIFICATION, notification(text));
    }

    private Notification notification(String text) {
        PendingIntent open = PendingIntent.getActivity(this, 0, new Intent(this, MainActivity.class),
                PendingIntent.FLAG_IMMUTABLE | PendingIntent.FLAG_UPDATE_CURRENT);
        return new NotificationCompat.Builder(this, CHANNEL)
                .setSmallIcon(android.R.drawable.stat_notify_sync)
                .setContentTitle(getString(R.string.app_name))
                .setContentText(text)
                .setStyle(new NotificationCompat.BigTextStyle().bigText(text))
                .setContentIntent(open)
                .setOngoing(true)
                .setOnlyAlertOnce(true)
                .setForegroundServiceBehavior(NotificationCompat.FOREGROUND_SERVICE_IMMEDIATE)
                .build();
    }
}
