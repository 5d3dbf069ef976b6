package dev.squeeze;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;

import org.junit.jupiter.api.function.Executable;

/** Shared assertions. */
final class Assert {
    static final float TOLERANCE = 1e-5f;

    private Assert() {}

    /** The output buffer holds the reference {@code .npy} the Rust CLI saved, within 1e-5. */
    static void matchesReference(String npy, ByteBuffer output) throws IOException {
        Fixtures.Npy want = Fixtures.readNpy(Fixtures.file(npy));
        assertArrayEquals(new long[] {1, 10}, want.shape, npy + " shape");
        assertArrayEquals(want.data, Fixtures.floats(output), TOLERANCE, "output vs " + npy);
    }

    /** {@code body} throws a SqueezeException of {@code status}; returns it. */
    static SqueezeException throwsStatus(SqueezeException.Status status, Executable body) {
        SqueezeException e = assertThrows(SqueezeException.class, body);
        assertEquals(status, e.status(), () -> "status of " + e);
        assertEquals(status.code(), e.statusCode());
        return e;
    }
}
