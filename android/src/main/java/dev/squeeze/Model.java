package dev.squeeze;

import java.nio.ByteBuffer;

/**
 * A loaded model: immutable, so its getters and {@link #newSession()} may be
 * called from any thread. Inference runs in a {@link Session}.
 *
 * <p>Close it when done ({@code try}-with-resources): the native memory is
 * not freed by the garbage collector. Sessions made from a model stay usable
 * after the model is closed. {@link #close()} is idempotent; any other
 * method after it throws {@link IllegalStateException}. {@code close()} must
 * not race with another call on the same model.
 */
public final class Model implements AutoCloseable {
    private final NativeHandle handle;
    private final TensorInfo[] inputs;
    private final TensorInfo[] outputs;
    private final String[] labels;

    private Model(long handle) throws SqueezeException {
        this.handle = new NativeHandle(handle, "model");
        try {
            this.inputs = ports(handle, false);
            this.outputs = ports(handle, true);
            this.labels = Native.modelLabels(handle);
        } catch (SqueezeException | RuntimeException | Error e) {
            Native.modelFree(handle);
            throw e;
        }
    }

    private static TensorInfo[] ports(long model, boolean outputs) throws SqueezeException {
        TensorInfo[] infos = new TensorInfo[Native.modelPortCount(model, outputs)];
        for (int i = 0; i < infos.length; i++) {
            infos[i] = new TensorInfo(
                    Native.modelPortName(model, outputs, i),
                    DType.fromCode(Native.modelPortDtype(model, outputs, i)),
                    Native.modelPortShape(model, outputs, i));
        }
        return infos;
    }

    private static LoadOptions orDefault(LoadOptions options) {
        return options == null ? new LoadOptions() : options;
    }

    /** Loads a model file ({@code .sqz}, memory-mapped) with the default options. */
    public static Model load(String path) throws SqueezeException {
        return load(path, null);
    }

    /** Loads a model file ({@code .sqz}, memory-mapped); {@code options} may be null. */
    public static Model load(String path, LoadOptions options) throws SqueezeException {
        LoadOptions o = orDefault(options);
        return new Model(Native.modelLoadPath(path, o.threads(), o.isa().code(), o.verifySha256()));
    }

    /**
     * Loads a {@code .sqz} stored in {@code length} bytes of the open file
     * {@code fd} from {@code offset} ({@code length} 0: to the end of the
     * file), mapping that region without copying: how an app reads a model
     * stored uncompressed in its APK (see {@code AndroidSqueeze.fromAsset}).
     * The descriptor stays the caller's and may be closed once this returns.
     */
    public static Model fromFileDescriptor(int fd, long offset, long length, LoadOptions options)
            throws SqueezeException {
        LoadOptions o = orDefault(options);
        return new Model(Native.modelLoadFd(fd, offset, length, o.threads(), o.isa().code(),
                o.verifySha256()));
    }

    /**
     * Loads a {@code .sqz} held in a direct buffer (all of it, from address 0
     * to its capacity; position and limit are ignored). The bytes are copied:
     * the buffer may be reused once this returns.
     */
    public static Model fromBuffer(ByteBuffer directBuffer) throws SqueezeException {
        return fromBuffer(directBuffer, null);
    }

    /** As {@link #fromBuffer(ByteBuffer)}, with options (may be null). */
    public static Model fromBuffer(ByteBuffer directBuffer, LoadOptions options) throws SqueezeException {
        LoadOptions o = orDefault(options);
        return new Model(Native.modelLoadBuffer(directBuffer, o.threads(), o.isa().code(),
                o.verifySha256()));
    }

    long handle() {
        return handle.get();
    }

    /** The inputs, in the order {@link Session#run} takes them. */
    public TensorInfo[] inputs() {
        handle();
        return inputs.clone();
    }

    /** The outputs, in the order {@link Session#run} fills them. */
    public TensorInfo[] outputs() {
        handle();
        return outputs.clone();
    }

    /** The class labels recorded at pack time (empty if none). */
    public String[] labels() {
        handle();
        return labels.clone();
    }

    /**
     * A new session: its own activation memory and worker threads. Any
     * number of sessions may run one model at once, one thread per session.
     */
    public Session newSession() throws SqueezeException {
        return new Session(Native.sessionCreate(handle()), inputs, outputs);
    }

    /** Frees the model (idempotent). Its sessions stay usable until closed. */
    @Override
    public void close() {
        long h = handle.release();
        if (h != 0) {
            Native.modelFree(h);
        }
    }
}
