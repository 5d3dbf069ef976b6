package dev.squeeze;

import java.nio.ByteBuffer;

/**
 * The JNI entry points of libsqueeze ({@code ffi/src/jni.rs}), one per C call.
 * Package-private: apps use {@link Model} and {@link Session}, which check
 * that their handles are open before calling in.
 *
 * <p>The library is {@code libsqueeze.so} from the AAR's {@code jni/<abi>/}
 * ({@code System.loadLibrary("squeeze")}); the system property
 * {@value #LIBRARY_PATH_PROPERTY}, when set, names a library file to load
 * instead, absolute or relative to the working directory (the desktop
 * tests load {@code target/release/libsqueeze_ffi.so}).
 *
 * <p>Every native taking a handle expects a live one (0 is refused with
 * {@link SqueezeException.Status#NULL_POINTER}); failures throw
 * {@link SqueezeException}. Buffers must be direct and are used from their
 * address to their capacity, in native byte order.
 */
final class Native {
    static final String LIBRARY_PATH_PROPERTY = "squeeze.library.path";

    static {
        String path = System.getProperty(LIBRARY_PATH_PROPERTY);
        if (path != null && !path.isEmpty()) {
            System.load(new java.io.File(path).getAbsolutePath());
        } else {
            System.loadLibrary("squeeze");
        }
    }

    private Native() {}

    static native String version();

    static native long modelLoadPath(String path, int threads, int isa, boolean verify)
            throws SqueezeException;

    /** {@code length} 0: from {@code offset} to the end of the file. */
    static native long modelLoadFd(int fd, long offset, long length, int threads, int isa, boolean verify)
            throws SqueezeException;

    /** Copies the buffer's bytes: it may be reused once this returns. */
    static native long modelLoadBuffer(ByteBuffer directBuffer, int threads, int isa, boolean verify)
            throws SqueezeException;

    static native void modelFree(long model);

    static native int modelPortCount(long model, boolean outputs) throws SqueezeException;

    static native String modelPortName(long model, boolean outputs, int index) throws SqueezeException;

    static native int modelPortDtype(long model, boolean outputs, int index) throws SqueezeException;

    static native long[] modelPortShape(long model, boolean outputs, int index) throws SqueezeException;

    static native String[] modelLabels(long model) throws SqueezeException;

    static native long sessionCreate(long model) throws SqueezeException;

    static native void sessionFree(long session);

    static native void sessionRun(long session, ByteBuffer[] inputs, ByteBuffer[] outputs)
            throws SqueezeException;

    /**
     * @param strides row stride and pixel stride of each plane, interleaved
     * @param crop x, y, width, height in frame pixels, or null for the whole frame
     */
    static native void sessionRunFrame(long session, int format, int width, int height,
            ByteBuffer[] planes, int[] strides, int rotationDegrees, boolean mirror, int[] crop,
            ByteBuffer[] outputs) throws SqueezeException;
}
