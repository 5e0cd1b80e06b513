package org.fedmef.app.node;

import flwr.proto.MessageOuterClass.Metadata;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.security.KeyPair;
import org.fedmef.core.fleet.Instruction;
import org.fedmef.core.fleet.NodeKeys;
import org.fedmef.core.records.RecordDict;

/**
 * The two things the app needs from {@code fedmef-core} that its public API does not offer yet,
 * in one place, reached by reflection on the core's own constructors:
 *
 * <ul>
 *   <li>{@link NodeKeys} around a key pair whose private key cannot be exported (an Android
 *       Keystore key): core only builds NodeKeys from a generated key or a PKCS#8 PEM, and its
 *       {@code NodeKeys(KeyPair)} constructor is private. Signing only needs
 *       {@code keyPair().getPrivate()} ({@code SHA256withECDSA}) and the public key, so a Keystore
 *       pair works as is.</li>
 *   <li>{@link Instruction} rebuilt from persisted metadata, to push a reply computed before the
 *       process died: {@code FleetClient.pushReply} takes an Instruction, whose constructor is
 *       package-private.</li>
 * </ul>
 *
 * <p>Both go away once core offers {@code NodeKeys.of(KeyPair)} and {@code Instruction.restore(...)}.
 * {@code CoreGapsTest} (a JVM unit test) fails as soon as a core change breaks either constructor;
 * {@code proguard-rules.pro} keeps them when the app is minified.
 */
public final class CoreGaps {
    private CoreGaps() {
    }

    /** NodeKeys around {@code pair} (an EC P-256 pair; the private key may be non-exportable). */
    public static NodeKeys nodeKeys(KeyPair pair) {
        return construct(NodeKeys.class, new Class<?>[] {KeyPair.class}, pair);
    }

    /** The instruction {@code metadata} (with its message id) as FleetClient knows it, with {@code content}. */
    public static Instruction instruction(Metadata metadata, RecordDict content, long receivedAtMillis) {
        return construct(Instruction.class, new Class<?>[] {Metadata.class, RecordDict.class, String.class, long.class},
                metadata, content, null, receivedAtMillis);
    }

    private static <T> T construct(Class<T> type, Class<?>[] parameters, Object... args) {
        try {
            Constructor<T> constructor = type.getDeclaredConstructor(parameters);
            constructor.setAccessible(true);
            return constructor.newInstance(args);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException) {
                throw (RuntimeException) cause;
            }
            throw new IllegalStateException(type.getSimpleName() + " constructor failed", cause);
        } catch (ReflectiveOperationException | SecurityException e) {
            throw new IllegalStateException("fedmef-core changed: " + type.getName()
                    + " no longer has the constructor the app relies on (" + e + ")", e);
        }
    }
}
