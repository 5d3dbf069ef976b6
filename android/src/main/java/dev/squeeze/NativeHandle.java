package dev.squeeze;

import java.util.concurrent.atomic.AtomicLong;

/** A native handle that is open until released once; using it after that is a Java error. */
final class NativeHandle {
    private final AtomicLong value;
    private final String what;

    NativeHandle(long value, String what) {
        this.value = new AtomicLong(value);
        this.what = what;
    }

    /** The open handle; throws {@link IllegalStateException} once released. */
    long get() {
        long h = value.get();
        if (h == 0) {
            throw new IllegalStateException("the " + what + " is closed");
        }
        return h;
    }

    /** The handle for its one free call, or 0 if it was already released. */
    long release() {
        return value.getAndSet(0);
    }
}
