package dev.squeeze;

/** Facts about the native library. */
public final class Squeeze {
    private Squeeze() {}

    /** The native library's version, e.g. {@code "0.1.0"} (loads the library). */
    public static String version() {
        return Native.version();
    }
}
