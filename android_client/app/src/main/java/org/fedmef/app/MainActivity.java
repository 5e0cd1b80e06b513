package org.fedmef.app;

import android.Manifest;
import android.content.ClipData;
import android.content.ClipboardManager;
import android.content.pm.PackageManager;
import android.os.Build;
import android.os.Bundle;
import android.view.View;
import android.widget.ArrayAdapter;
import android.widget.Button;
import android.widget.CheckBox;
import android.widget.EditText;
import android.widget.RadioGroup;
import android.widget.ScrollView;
import android.widget.Spinner;
import android.widget.TextView;
import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.contract.ActivityResultContracts;
import androidx.appcompat.app.AppCompatActivity;
import androidx.core.content.ContextCompat;
import androidx.lifecycle.ViewModelProvider;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.fedmef.app.node.Backend;
import org.fedmef.app.node.NodeSettings;
import org.fedmef.app.node.StatusBoard;

/**
 * The one screen: SuperLink address, TLS CA (file or pasted PEM), backend, data partition,
 * start/stop; below, the node's status (round, last loss, memory) and its log. All state lives in
 * {@link NodeViewModel}; the node itself runs in {@link TrainingService}.
 */
public final class MainActivity extends AppCompatActivity {
    private NodeViewModel model;
    private EditText superlink;
    private CheckBox tls;
    private TextView caPath;
    private RadioGroup backend;
    private Spinner partition;
    private ArrayAdapter<String> partitionItems;
    private TextView status;
    private TextView log;
    private ScrollView logScroll;
    private TextView message;
    private TextView key;
    private Button start;
    private Button stop;
    private boolean formFilled;

    private final ActivityResultLauncher<android.net.Uri> pickPartition =
            registerForActivityResult(new ActivityResultContracts.OpenDocumentTree(), uri -> {
                if (uri != null) {
                    model.importPartition(uri);
                }
            });
    private final ActivityResultLauncher<String[]> pickCertificate =
            registerForActivityResult(new ActivityResultContracts.OpenDocument(), uri -> {
                if (uri != null) {
                    model.importCertificate(uri);
                }
            });
    private final ActivityResultLauncher<String> askNotifications =
            registerForActivityResult(new ActivityResultContracts.RequestPermission(), granted -> startNode());

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        model = new ViewModelProvider(this).get(NodeViewModel.class);
        formFilled = savedInstanceState != null; // views restore their own state after a rotation

        superlink = findViewById(R.id.superlink);
        tls = findViewById(R.id.tls);
        caPath = findViewById(R.id.ca_path);
        backend = findViewById(R.id.backend);
        partition = findViewById(R.id.partition);
        status = findViewById(R.id.status);
        log = findViewById(R.id.log);
        logScroll = findViewById(R.id.log_scroll);
        message = findViewById(R.id.message);
        key = findViewById(R.id.public_key);
        start = findViewById(R.id.start);
        stop = findViewById(R.id.stop);

        partitionItems = new ArrayAdapter<>(this, android.R.layout.simple_spinner_item, new ArrayList<String>());
        partitionItems.setDropDownViewResource(android.R.layout.simple_spinner_dropdown_item);
        partition.setAdapter(partitionItems);

        findViewById(R.id.pick_ca).setOnClickListener(v -> pickCertificate.launch(new String[] {"*/*"}));
        findViewById(R.id.paste_ca).setOnClickListener(v -> pasteCertificate());
        findViewById(R.id.import_partition).setOnClickListener(v -> pickPartition.launch(null));
        findViewById(R.id.copy_key).setOnClickListener(v -> copyKey());
        start.setOnClickListener(v -> onStartClicked());
        stop.setOnClickListener(v -> model.stop());
        tls.setOnCheckedChangeListener((button, checked) -> {
            if (!checked) {
                model.clearCertificate();
            }
        });

        model.status().observe(this, this::render);
        model.partitions().observe(this, this::showPartitions);
        model.caCertificate().observe(this, path -> {
            caPath.setText(path.isEmpty() ? getString(R.string.no_ca) : path);
            if (!path.isEmpty()) {
                tls.setChecked(true);
            }
        });
        model.publicKey().observe(this, key::setText);
        model.message().observe(this, text -> {
            message.setText(text);
            message.setVisibility(text.isEmpty() ? View.GONE : View.VISIBLE);
        });
        model.savedSettings().observe(this, this::fillForm);
    }

    @Override
    protected void onResume() {
        super.onResume();
        model.resumeIfWanted();
    }

    private void onStartClicked() {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU && ContextCompat.checkSelfPermission(this,
                Manifest.permission.POST_NOTIFICATIONS) != PackageManager.PERMISSION_GRANTED) {
            askNotifications.launch(Manifest.permission.POST_NOTIFICATIONS); // the node starts either way
            return;
        }
        startNode();
    }

    private void startNode() {
        String ca = model.caCertificate().getValue();
        if (tls.isChecked() && (ca == null || ca.isEmpty())) {
            message.setText(R.string.need_ca);
            message.setVisibility(View.VISIBLE);
            return;
        }
        Object chosen = partition.getSelectedItem();
        try {
            NodeSettings settings = NodeSettings.builder()
                    .superlink(superlink.getText().toString())
                    .caCertificate(tls.isChecked() ? ca : "")
                    .backend(backend.getCheckedRadioButtonId() == R.id.backend_executorch ? Backend.EXECUTORCH : Backend.ORT)
                    .partition(chosen == null ? null : chosen.toString())
                    .build();
            model.start(settings);
        } catch (IllegalArgumentException e) {
            message.setText(e.getMessage());
            message.setVisibility(View.VISIBLE);
        }
    }

    private void fillForm(NodeSettings settings) {
        if (formFilled || settings == null) {
            return;
        }
        formFilled = true;
        superlink.setText(settings.superlink());
        tls.setChecked(!settings.insecure());
        backend.check(settings.backend() == Backend.EXECUTORCH ? R.id.backend_executorch : R.id.backend_ort);
        selectPartition(settings.partition());
    }

    private void showPartitions(List<String> items) {
        Object selected = partition.getSelectedItem();
        partitionItems.clear();
        partitionItems.addAll(items);
        if (selected != null) {
            selectPartition(selected.toString());
        } else if (model.savedSettings().getValue() != null) {
            selectPartition(model.savedSettings().getValue().partition());
        }
        if (items.isEmpty()) {
            message.setText(R.string.no_partitions);
            message.setVisibility(View.VISIBLE);
        }
    }

    private void selectPartition(String value) {
        int position = partitionItems.getPosition(value);
        if (position >= 0) {
            partition.setSelection(position);
        }
    }

    private void render(StatusBoard.Snapshot s) {
        StringBuilder text = new StringBuilder(s.phase.name().toLowerCase(Locale.ROOT));
        if (!s.node.isEmpty()) {
            text.append(" · ").append(s.node);
        }
        if (s.backend != null) {
            text.append(" · ").append(s.backend);
        }
        text.append('\n').append(getString(R.string.rounds, s.trainRounds, s.evaluateRounds, s.errorReplies));
        if (s.last != null) {
            text.append('\n').append(getString(R.string.last, s.last.toString()));
        }
        text.append('\n').append(getString(R.string.memory, s.memory.toString()));
        if (!s.failure.isEmpty()) {
            text.append('\n').append(getString(R.string.failure, s.failure));
        }
        status.setText(text);
        start.setEnabled(!s.running());
        stop.setEnabled(s.running());
        log.setText(String.join("\n", s.log));
        logScroll.post(() -> logScroll.fullScroll(View.FOCUS_DOWN));
    }

    private void pasteCertificate() {
        ClipboardManager clipboard = getSystemService(ClipboardManager.class);
        ClipData clip = clipboard == null ? null : clipboard.getPrimaryClip();
        CharSequence text = clip == null || clip.getItemCount() == 0 ? null : clip.getItemAt(0).coerceToText(this);
        model.pasteCertificate(text == null ? "" : text.toString());
    }

    private void copyKey() {
        ClipboardManager clipboard = getSystemService(ClipboardManager.class);
        if (clipboard != null) {
            clipboard.setPrimaryClip(ClipData.newPlainText(getString(R.string.public_key), key.getText()));
        }
    }
}
