package org.fedmef.core.fleet;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.Collections;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Protocol;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okhttp3.ResponseBody;

/**
 * {@link FleetTransport} over OkHttp, HTTP/1.1 (the SuperLink's uvicorn answers an h2c upgrade
 * with 400). Plain http for {@code --insecure} SuperLinks; https trusting exactly the given CA
 * certificate (the SuperLink's {@code --ssl-ca-certfile}) otherwise.
 */
public final class OkHttpTransport implements FleetTransport {
    private static final MediaType PROTOBUF = MediaType.get("application/protobuf");
    private final String baseUrl;
    private final OkHttpClient http;

    private OkHttpTransport(String baseUrl, OkHttpClient http) {
        this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        this.http = http;
    }

    /** Plain http to {@code host:port}. */
    public static OkHttpTransport insecure(String address) {
        return new OkHttpTransport("http://" + address, base().build());
    }

    /** https to {@code host:port}, trusting only the CA certificate(s) in {@code caPem}. */
    public static OkHttpTransport tls(String address, Path caPem) throws IOException {
        X509TrustManager trust = trustManager(caPem);
        try {
            SSLContext ssl = SSLContext.getInstance("TLS");
            ssl.init(null, new TrustManager[] {trust}, null);
            return new OkHttpTransport("https://" + address,
                    base().sslSocketFactory(ssl.getSocketFactory(), trust).build());
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot set up TLS: " + e.getMessage(), e);
        }
    }

    /** Any base URL (e.g. a test server's), with a plain client. */
    public static OkHttpTransport forBaseUrl(String baseUrl) {
        return new OkHttpTransport(baseUrl, base().build());
    }

    @Override
    public byte[] post(String path, byte[] body, Map<String, String> headers) throws IOException {
        Request.Builder request = new Request.Builder().url(baseUrl + path)
                .header("accept", "application/protobuf")
                .post(RequestBody.create(body, PROTOBUF));
        for (Map.Entry<String, String> h : headers.entrySet()) {
            request.header(h.getKey(), h.getValue());
        }
        try (Response response = http.newCall(request.build()).execute()) {
            ResponseBody responseBody = response.body();
            byte[] bytes = responseBody == null ? new byte[0] : responseBody.bytes();
            if (!response.isSuccessful()) {
                throw error(path, response.code(), bytes);
            }
            return bytes;
        }
    }

    /** Maps an error answer, {@code {"code": ..., "detail": ...}} when flwr sent one. */
    static FleetException error(String path, int status, byte[] body) {
        String text = new String(body, StandardCharsets.UTF_8).trim();
        try {
            JsonElement json = JsonParser.parseString(text);
            if (json.isJsonObject()) {
                JsonObject o = json.getAsJsonObject();
                int code = o.has("code") && o.get("code").isJsonPrimitive() ? o.get("code").getAsInt() : -1;
                JsonElement d = o.get("detail");
                String detail = d == null ? text
                        : d.isJsonPrimitive() ? d.getAsString() : d.toString();
                return new FleetException(path, status, code, detail);
            }
        } catch (RuntimeException notJson) {
            // fall through: keep the raw text
        }
        return new FleetException(path, status, -1, text.length() > 500 ? text.substring(0, 500) : text);
    }

    private static OkHttpClient.Builder base() {
        return new OkHttpClient.Builder()
                .protocols(Collections.singletonList(Protocol.HTTP_1_1))
                .connectTimeout(15, TimeUnit.SECONDS)
                .readTimeout(120, TimeUnit.SECONDS)
                .writeTimeout(120, TimeUnit.SECONDS);
    }

    private static X509TrustManager trustManager(Path caPem) throws IOException {
        try (InputStream in = Files.newInputStream(caPem)) {
            KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
            store.load(null, null);
            int i = 0;
            for (Certificate cert : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                store.setCertificateEntry("ca" + i++, cert);
            }
            if (i == 0) {
                throw new IOException(caPem + ": no certificate");
            }
            TrustManagerFactory f = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            f.init(store);
            for (TrustManager tm : f.getTrustManagers()) {
                if (tm instanceof X509TrustManager) {
                    return (X509TrustManager) tm;
                }
            }
            throw new IOException("no X509TrustManager available");
        } catch (GeneralSecurityException e) {
            throw new IOException(caPem + ": " + e.getMessage(), e);
        }
    }
}
