package org.fedmef.core.contract;

import static org.fedmef.core.contract.StatePackingTest.assertMentions;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.stream.Stream;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.NdArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The content-addressed artifact store: atomic writes, verification, error messages naming the file. */
class ArtifactStoreTest {
    @TempDir
    Path root;

    private final Manifest manifest = TinyModel.manifest();

    @Test
    void storesFilesBySha256AndVerifiesThem() throws Exception {
        ArtifactStore store = new ArtifactStore(root);
        store.receive(manifest, TinyModel.artifacts());
        store.verify(manifest);
        Manifest.FileEntry step = manifest.fileOf("step");
        assertEquals(root.resolve(step.sha256()), store.pathOf(step));
        assertArrayEquals(TinyModel.STEP_FILE, Files.readAllBytes(store.pathOf(step)));
        try (Stream<Path> files = Files.list(root)) {
            assertEquals(3, files.count()); // no temporary file left behind
        }
    }

    @Test
    void aFileAlreadyPresentIsNotWrittenAgain() throws Exception {
        ArtifactStore store = new ArtifactStore(root);
        store.receive(manifest, TinyModel.artifacts());
        Path step = store.pathOf(manifest.fileOf("step"));
        FileTime old = FileTime.fromMillis(1_000_000L);
        Files.setLastModifiedTime(step, old);
        store.receive(manifest, TinyModel.artifacts());
        assertEquals(old, Files.getLastModifiedTime(step));
    }

    @Test
    void aCorruptedStoredFileFailsVerificationNamingItAndIsRepairedByAResend() throws Exception {
        ArtifactStore store = new ArtifactStore(root);
        store.receive(manifest, TinyModel.artifacts());
        Manifest.FileEntry growth = manifest.fileOf("growth");
        Files.write(store.pathOf(growth), "tampered".getBytes("US-ASCII"));
        ArtifactException e = assertThrows(ArtifactException.class, () -> store.verify(manifest));
        assertMentions(e, "growth.onnx", growth.sha256(), Sha256.of("tampered".getBytes("US-ASCII")));
        store.receive(manifest, TinyModel.artifacts());
        store.verify(manifest);
    }

    @Test
    void aCorruptedTransferIsRefusedNamingTheFileAndBothHashes() {
        byte[] bad = TinyModel.STEP_FILE.clone();
        bad[0] ^= 1;
        ArrayRecord artifacts = ArrayRecord.builder().put("file/step.onnx", NdArray.ofBytes(bad)).build();
        ArtifactStore store = new ArtifactStore(root);
        ArtifactException e = assertThrows(ArtifactException.class, () -> store.receive(manifest, artifacts));
        assertMentions(e, "step.onnx", manifest.fileOf("step").sha256(), Sha256.of(bad));
        assertFalse(Files.exists(store.pathOf(manifest.fileOf("step"))));
    }

    @Test
    void aMissingFileIsReportedAsMissing() {
        ArtifactException e = assertThrows(ArtifactException.class, () -> new ArtifactStore(root).verify(manifest));
        assertMentions(e, "step.onnx", "missing", manifest.fileOf("step").sha256());
    }

    @Test
    void aFileTheManifestDoesNotListIsRefused() {
        ArrayRecord artifacts = ArrayRecord.builder().put("file/extra.onnx", NdArray.ofBytes(new byte[] {1})).build();
        assertMentions(assertThrows(ArtifactException.class, () -> new ArtifactStore(root).receive(manifest, artifacts)),
                "extra.onnx", "not listed");
        ArrayRecord odd = ArrayRecord.builder().put("step.onnx", NdArray.ofBytes(TinyModel.STEP_FILE)).build();
        assertThrows(ContractException.class, () -> new ArtifactStore(root).receive(manifest, odd));
    }
}
