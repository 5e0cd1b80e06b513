package org.fedmef.core.contract;

/**
 * A file the manifest lists is missing, has the wrong size or the wrong sha256, or an instruction
 * carries a file the manifest does not list. The message starts with the file's name
 * ({@code step.onnx: sha256 mismatch, expected …, got …}).
 */
public class ArtifactException extends ContractException {
    private static final long serialVersionUID = 1L;

    public ArtifactException(String message) {
        super(message);
    }

    public ArtifactException(String message, Throwable cause) {
        super(message, cause);
    }
}
