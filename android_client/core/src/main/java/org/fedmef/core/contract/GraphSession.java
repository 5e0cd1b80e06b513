package org.fedmef.core.contract;

import java.util.LinkedHashMap;
import org.fedmef.core.records.NdArray;

/**
 * One loaded graph. {@link #run} takes every graph input by name, in the manifest's input order
 * (a positional runtime may rely on that order), and returns every manifest output by name, in
 * the manifest's output order. Close it to free the runtime's memory.
 */
public interface GraphSession extends AutoCloseable {
    /**
     * Runs the graph once.
     *
     * @throws ContractException when a feed the graph needs is missing or an output is absent
     * @throws TrainerException  when the runtime fails
     */
    LinkedHashMap<String, NdArray> run(LinkedHashMap<String, NdArray> feeds);

    @Override
    void close();
}
