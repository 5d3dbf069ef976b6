package dev.squeeze;

/**
 * A failure reported by the native library: a {@link Status} (the C ABI's
 * {@code SqzStatus}) and the library's message. Thrown by every call into
 * the library; misuse of a closed {@link Model} or {@link Session} throws
 * {@link IllegalStateException} instead.
 */
public class SqueezeException extends Exception {
    private static final long serialVersionUID = 1L;

    /** The C ABI's {@code SqzStatus} values. */
    public enum Status {
        OK(0),
        /** A required argument was null. */
        NULL_POINTER(1),
        /** An argument is out of range or inconsistent (a non-direct buffer, a count, an index). */
        INVALID_ARGUMENT(2),
        /** The file could not be opened, read or mapped. */
        IO(3),
        /** The model file is corrupt, truncated or fails its checksums. */
        INVALID_MODEL(4),
        /** The model needs an operator or feature this build lacks (or an ISA this CPU lacks). */
        UNSUPPORTED(5),
        /** A buffer's byte size is not the tensor's. */
        BUFFER_SIZE(6),
        /** A buffer's element type is not the tensor's. */
        DTYPE(7),
        /** A camera frame is inconsistent: planes, strides, crop or rotation. */
        FRAME(8),
        /** The session is running on another thread; nothing was done. */
        BUSY(9),
        /** The library panicked (a bug); the handle involved is poisoned. */
        PANIC(10),
        /** The handle panicked before and refuses further use: close it. */
        POISONED(11),
        /** A code this version of the Java library does not know. */
        UNKNOWN(-1);

        private final int code;

        Status(int code) {
            this.code = code;
        }

        /** The numeric {@code SqzStatus}. */
        public int code() {
            return code;
        }

        /** The status for a numeric code ({@link #UNKNOWN} if none). */
        public static Status fromCode(int code) {
            for (Status s : values()) {
                if (s.code == code) {
                    return s;
                }
            }
            return UNKNOWN;
        }
    }

    private final Status status;
    private final int code;

    /** Called by the native library (JNI): keep this constructor. */
    public SqueezeException(int status, String message) {
        super(message);
        this.code = status;
        this.status = Status.fromCode(status);
    }

    SqueezeException(Status status, String message) {
        this(status.code(), message);
    }

    /** What kind of failure this is. */
    public Status status() {
        return status;
    }

    /** The numeric status as the library returned it. */
    public int statusCode() {
        return code;
    }

    @Override
    public String toString() {
        return getClass().getName() + " [" + status + "]: " + getMessage();
    }
}
