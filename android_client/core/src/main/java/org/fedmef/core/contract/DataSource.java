package org.fedmef.core.contract;

import java.io.IOException;

/**
 * This node's data share: the training split (in the order the batch order of protocol §4
 * indexes) and the validation split (may be empty). The Android app can back it with its own
 * storage; {@link PartitionDataSource} reads the §8 directory.
 */
public interface DataSource {
    Samples train() throws IOException;

    Samples validation() throws IOException;
}
