package org.fedmef.core.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.onnxruntime.OrtSession;
import org.junit.jupiter.api.Test;

/**
 * The session options of {@link OrtTrainer}: constant folding off (as the Python client creates
 * its sessions), whatever the arena and thread settings.
 */
class OrtTrainerOptionsTest {
    @Test
    void constantFoldingIsOffWithAndWithoutTheArena() throws Exception {
        for (OrtTrainer trainer : new OrtTrainer[] {new OrtTrainer(0), new OrtTrainer(1, false)}) {
            try (OrtSession.SessionOptions options = trainer.sessionOptions()) {
                assertEquals("ConstantFolding", options.getConfigEntries().get(OrtTrainer.DISABLED_OPTIMIZERS));
            }
        }
    }

    @Test
    void negativeThreadCountsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new OrtTrainer(-1, true));
    }
}
