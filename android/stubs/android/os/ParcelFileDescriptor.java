package android.os;

/** Compile-only stub of the public API (not packed). */
public class ParcelFileDescriptor implements java.io.Closeable {
    ParcelFileDescriptor() {
        throw new RuntimeException("stub");
    }

    public int getFd() {
        throw new RuntimeException("stub");
    }

    public java.io.FileDescriptor getFileDescriptor() {
        throw new RuntimeException("stub");
    }

    public long getStatSize() {
        throw new RuntimeException("stub");
    }

    @Override
    public void close() throws java.io.IOException {
        throw new RuntimeException("stub");
    }
}
