package org.fedmef.app;

import android.app.Application;
import android.net.Uri;
import androidx.annotation.NonNull;
import androidx.lifecycle.AndroidViewModel;
import androidx.lifecycle.LiveData;
import androidx.lifecycle.MutableLiveData;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.fedmef.app.node.NodeSettings;
import org.fedmef.app.node.NodeState;
import org.fedmef.app.node.StatusBoard;

/**
 * The screen's state, kept across rotations: the node's status (LiveData from {@link NodeStatus}),
 * the partitions to choose from, the chosen CA certificate, the node's public key, and one line of
 * feedback. File and Keystore work runs on a background executor, never on the main thread.
 */
public final class NodeViewModel extends AndroidViewModel {
    private final ExecutorService io = Executors.newSingleThreadExecutor();
    private final MutableLiveData<List<String>> partitions = new MutableLiveData<>(Collections.<String>emptyList());
    private final MutableLiveData<String> caCertificate = new MutableLiveData<>("");
    private final MutableLiveData<String> publicKey = new MutableLiveData<>("");
    private final MutableLiveData<String> message = new MutableLiveData<>("");
    private final MutableLiveData<NodeSettings> saved = new MutableLiveData<>();

    public NodeViewModel(@NonNull Application application) {
        super(application);
        io.execute(() -> {
            try {
                NodeSettings settings = NodeSettings.load(AppFiles.settings(application));
                saved.postValue(settings);
                if (settings != null) {
                    caCertificate.postValue(settings.caCertificate());
                }
                NodeState state = NodeState.load(AppFiles.nodeState(application));
                if (state.nodeId() != 0) {
                    NodeStatus.board().log("last run: " + state);
                }
            } catch (IOException e) {
                message.postValue("could not read the saved settings: " + e.getMessage());
            }
            refreshPartitionsNow();
            try {
                publicKey.postValue(AndroidKeystoreKeys.nodeKeys().openSshPublicKey());
            } catch (Exception e) {
                publicKey.postValue("(no key: " + e.getMessage() + ")");
            }
        });
    }

    public LiveData<StatusBoard.Snapshot> status() {
        return NodeStatus.live();
    }

    public LiveData<List<String>> partitions() {
        return partitions;
    }

    /** Path of the CA certificate copied to app storage; empty when none was chosen. */
    public LiveData<String> caCertificate() {
        return caCertificate;
    }

    /** The node's OpenSSH public key line, for {@code flwr supernode register}. */
    public LiveData<String> publicKey() {
        return publicKey;
    }

    public LiveData<String> message() {
        return message;
    }

    /** The settings of the last start (null before the first), to fill the form. */
    public LiveData<NodeSettings> savedSettings() {
        return saved;
    }

    public void start(NodeSettings settings) {
        io.execute(() -> {
            try {
                TrainingService.start(getApplication(), settings);
                saved.postValue(settings);
                message.postValue("");
            } catch (IOException | RuntimeException e) {
                message.postValue("cannot start: " + e.getMessage());
            }
        });
    }

    public void stop() {
        io.execute(() -> {
            try {
                TrainingService.stop(getApplication());
            } catch (IOException | RuntimeException e) {
                message.postValue("cannot stop: " + e.getMessage());
            }
        });
    }

    /** Starts the node again when the user left it on and the process died without Android restarting it. */
    public void resumeIfWanted() {
        io.execute(() -> {
            try {
                if (AppFiles.wanted(getApplication()) && !NodeStatus.board().snapshot().running()) {
                    NodeSettings settings = NodeSettings.load(AppFiles.settings(getApplication()));
                    if (settings != null) {
                        NodeStatus.board().log("resuming the node that was running before the app was closed");
                        TrainingService.start(getApplication(), settings);
                    }
                }
            } catch (IOException | RuntimeException e) {
                message.postValue("cannot resume: " + e.getMessage());
            }
        });
    }

    public void importPartition(Uri tree) {
        io.execute(() -> {
            try {
                String path = AndroidDataSource.importTree(getApplication(), tree);
                message.postValue("imported " + path);
                refreshPartitionsNow();
            } catch (IOException | RuntimeException e) {
                message.postValue("not a partition folder: " + e.getMessage());
            }
        });
    }

    /** Copies a picked PEM file to app storage and uses it as the SuperLink's CA. */
    public void importCertificate(Uri document) {
        io.execute(() -> {
            try (InputStream in = getApplication().getContentResolver().openInputStream(document)) {
                if (in == null) {
                    throw new IOException("cannot read " + document);
                }
                ByteCollector bytes = new ByteCollector();
                bytes.readAll(in);
                useCertificate(new String(bytes.toByteArray(), StandardCharsets.US_ASCII));
            } catch (IOException | RuntimeException e) {
                message.postValue("CA certificate: " + e.getMessage());
            }
        });
    }

    /** Uses pasted PEM text as the SuperLink's CA. */
    public void pasteCertificate(String pem) {
        io.execute(() -> {
            try {
                useCertificate(pem);
            } catch (IOException | RuntimeException e) {
                message.postValue("CA certificate: " + e.getMessage());
            }
        });
    }

    public void clearCertificate() {
        caCertificate.setValue("");
    }

    @Override
    protected void onCleared() {
        io.shutdown();
    }

    private void useCertificate(String pem) throws IOException {
        if (pem == null || !pem.contains("-----BEGIN CERTIFICATE-----")) {
            throw new IOException("not a PEM certificate (expected -----BEGIN CERTIFICATE-----)");
        }
        Path dir = AppFiles.certificates(getApplication());
        Files.createDirectories(dir);
        Path file = dir.resolve("superlink-ca-" + System.currentTimeMillis() + ".pem");
        Files.write(file, pem.trim().concat("\n").getBytes(StandardCharsets.US_ASCII));
        caCertificate.postValue(file.toString());
        message.postValue("CA certificate saved: " + file.getFileName());
    }

    private void refreshPartitionsNow() {
        try {
            partitions.postValue(new ArrayList<>(AndroidDataSource.available(getApplication())));
        } catch (IOException e) {
            message.postValue("cannot list partitions: " + e.getMessage());
        }
    }

    /** InputStream.readAllBytes is Java 9 (Android API 33): read in chunks instead. */
    private static final class ByteCollector extends java.io.ByteArrayOutputStream {
        void readAll(InputStream in) throws IOException {
            byte[] buffer = new byte[8192];
            int n;
            while ((n = in.read(buffer)) > 0) {
                write(buffer, 0, n);
                if (size() > 1 << 20) {
                    throw new IOException("larger than 1 MiB: not a CA certificate");
                }
            }
        }
    }
}
