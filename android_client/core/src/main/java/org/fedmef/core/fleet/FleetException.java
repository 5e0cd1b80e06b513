package org.fedmef.core.fleet;

import java.io.IOException;

/**
 * A Fleet API call answered with an HTTP error: the status and flwr's JSON {@code code} and
 * {@code detail} (code is -1 when the body was not such JSON).
 */
public final class FleetException extends IOException {
    private static final long serialVersionUID = 1L;
    private final int status;
    private final int code;
    private final String detail;

    public FleetException(String path, int status, int code, String detail) {
        super(path + ": HTTP " + status + (code >= 0 ? " code " + code : "") + (detail.isEmpty() ? "" : ": " + detail));
        this.status = status;
        this.code = code;
        this.detail = detail;
    }

    /** HTTP status. */
    public int status() {
        return status;
    }

    /** flwr's error code, or -1. */
    public int code() {
        return code;
    }

    /** flwr's error detail (or the raw body), possibly empty. */
    public String detail() {
        return detail;
    }

    /** Whether retrying may help: server errors and overload (5xx, 429). */
    public boolean retryable() {
        return status >= 500 || status == 429;
    }
}
