package org.fedmef.core.contract;

import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.fedmef.core.records.NdArray;

/**
 * Open graph sessions keyed by file sha256, so a graph is loaded once across rounds; sessions
 * whose file the current manifest no longer uses are closed ({@link #retain}). {@link #run}
 * checks each output's dtype and element count against the manifest and returns the outputs in
 * manifest order, shaped as the manifest lists them.
 */
final class SessionCache implements AutoCloseable {
    private final Trainer trainer;
    private final ArtifactStore store;
    private final Map<String, GraphSession> sessions = new LinkedHashMap<>();

    SessionCache(Trainer trainer, ArtifactStore store) {
        this.trainer = trainer;
        this.store = store;
    }

    /** Closes the sessions of files that none of {@code manifest}'s graphs runs. */
    void retain(Manifest manifest) {
        Set<String> used = new HashSet<>();
        for (String graph : new String[] {Manifest.STEP, Manifest.GROWTH, Manifest.EVALUATE}) {
            if (manifest.hasGraph(graph)) {
                used.add(manifest.fileOf(graph).sha256());
            }
        }
        for (Iterator<Map.Entry<String, GraphSession>> it = sessions.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<String, GraphSession> e = it.next();
            if (!used.contains(e.getKey())) {
                it.remove();
                e.getValue().close();
            }
        }
    }

    /** Runs graph {@code graph} of {@code manifest} on {@code feeds} (opening its file on first use). */
    LinkedHashMap<String, NdArray> run(Manifest manifest, String graph, LinkedHashMap<String, NdArray> feeds) {
        Manifest.FileEntry file = manifest.fileOf(graph);
        GraphSession session = sessions.get(file.sha256());
        if (session == null) {
            session = trainer.open(manifest, graph, store.pathOf(file));
            sessions.put(file.sha256(), session);
        }
        Map<String, NdArray> raw = session.run(feeds);
        LinkedHashMap<String, NdArray> out = new LinkedHashMap<>();
        for (Manifest.Output o : manifest.graph(graph).outputs()) {
            NdArray value = raw.get(o.name());
            if (value == null) {
                throw new ContractException(file.name() + ": the graph returned no output '" + o.name() + "'");
            }
            if (value.type() != o.dtype() || value.numel() != Shapes.numel(o.shape())) {
                throw new ContractException(file.name() + ": output '" + o.name() + "' is " + value.dtype() + " "
                        + Shapes.text(value.shape()) + ", the manifest lists " + o.dtype().numpyName() + " "
                        + Shapes.text(o.shape()));
            }
            out.put(o.name(), value.reshape(o.shape()));
        }
        return out;
    }

    /** Number of open sessions. */
    int size() {
        return sessions.size();
    }

    @Override
    public void close() {
        for (GraphSession s : sessions.values()) {
            s.close();
        }
        sessions.clear();
    }
}
