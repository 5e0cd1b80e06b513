package org.fedmef.app.node;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.nio.file.Path;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class NodeSettingsTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    @Test
    public void savedSettingsComeBackAfterARestart() throws Exception {
        NodeSettings s = NodeSettings.builder().superlink(" 10.0.2.2:9091 ").caCertificate("/data/ca.pem")
                .backend(Backend.EXECUTORCH).partition("asset:p1").heartbeatSeconds(20).pollSeconds(1.5).threads(2)
                .build();
        Path file = tmp.getRoot().toPath().resolve("settings.properties");
        s.save(file);
        NodeSettings back = NodeSettings.load(file);
        assertEquals("10.0.2.2:9091", back.superlink());
        assertEquals("/data/ca.pem", back.caCertificate());
        assertFalse(back.insecure());
        assertEquals(Backend.EXECUTORCH, back.backend());
        assertEquals("asset:p1", back.partition());
        assertEquals(20, back.heartbeatSeconds(), 0);
        assertEquals(1500, back.pollMillis());
        assertEquals(2, back.threads());
        assertNull(NodeSettings.load(tmp.getRoot().toPath().resolve("none")));
    }

    @Test
    public void insecureWithoutCertificateAndAddressChecked() {
        assertTrue(NodeSettings.builder().superlink("127.0.0.1:9091").partition("asset:p0").build().insecure());
        for (String bad : new String[] {"127.0.0.1", "http://host:1", "host:port", ""}) {
            try {
                NodeSettings.builder().superlink(bad).partition("asset:p0").build();
                fail(bad);
            } catch (IllegalArgumentException expected) {
                assertTrue(expected.getMessage().contains("host:port"));
            }
        }
    }

    @Test
    public void backendsNameTheManifestRuntimes() {
        assertEquals("onnxruntime", Backend.ORT.runtime());
        assertEquals("executorch", Backend.EXECUTORCH.runtime());
    }
}
