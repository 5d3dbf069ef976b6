package dev.squeeze;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A model's activation memory and worker threads, for one thread at a time.
 *
 * <p>Its methods are not synchronized: a session entered by a second thread
 * while running refuses that call with {@link SqueezeException.Status#BUSY}
 * (nothing is done; no data race). Use one session per thread, or your own
 * lock. Close it when done; {@link #close()} is idempotent, must not race
 * with {@code run}, and any other method after it throws
 * {@link IllegalStateException}.
 *
 * <p>Buffers are direct {@link ByteBuffer}s used whole, from address 0 to
 * their capacity (position and limit are neither read nor changed), in
 * native byte order ({@code order(ByteOrder.nativeOrder())} before reading
 * or writing them from Java); each must hold exactly its tensor's
 * {@link TensorInfo#byteSize()}.
 */
public final class Session implements AutoCloseable {
    private final NativeHandle handle;
    private final TensorInfo[] inputs;
    private final TensorInfo[] outputs;

    Session(long handle, TensorInfo[] inputs, TensorInfo[] outputs) {
        this.handle = new NativeHandle(handle, "session");
        this.inputs = inputs;
        this.outputs = outputs;
    }

    private long handle() {
        return handle.get();
    }

    /** The model's inputs. */
    public TensorInfo[] inputs() {
        handle();
        return inputs.clone();
    }

    /** The model's outputs. */
    public TensorInfo[] outputs() {
        handle();
        return outputs.clone();
    }

    /** One direct, native-order buffer per input, sized for it. */
    public ByteBuffer[] allocateInputs() {
        handle();
        return allocate(inputs);
    }

    /** One direct, native-order buffer per output, sized for it: pass them to {@code run}. */
    public ByteBuffer[] allocateOutputs() {
        handle();
        return allocate(outputs);
    }

    private static ByteBuffer[] allocate(TensorInfo[] infos) {
        ByteBuffer[] buffers = new ByteBuffer[infos.length];
        for (int i = 0; i < infos.length; i++) {
            long size = infos[i].byteSize();
            if (size > Integer.MAX_VALUE) {
                throw new IllegalStateException(infos[i] + " needs " + size + " bytes");
            }
            buffers[i] = ByteBuffer.allocateDirect((int) size).order(ByteOrder.nativeOrder());
        }
        return buffers;
    }

    /**
     * Runs the model: one buffer per input, in model order, and one per
     * output, which receive the results. Nothing is allocated after the
     * first run.
     */
    public void run(ByteBuffer[] inputs, ByteBuffer[] outputs) throws SqueezeException {
        Native.sessionRun(handle(), inputs, outputs);
    }

    /**
     * Runs the model on a camera frame: the frame is cropped, rotated,
     * mirrored and resized per {@code options} (null: the whole frame,
     * upright) straight into the model's one image input, with the
     * preprocessing recorded in the {@code .sqz}; the planes are read in place.
     */
    public void runFrame(Frame frame, FrameOptions options, ByteBuffer[] outputs) throws SqueezeException {
        long h = handle();
        if (frame == null) {
            throw new SqueezeException(SqueezeException.Status.NULL_POINTER, "frame is null");
        }
        FrameOptions o = options == null ? new FrameOptions() : options;
        Native.sessionRunFrame(h, frame.format().code(), frame.width(), frame.height(),
                frame.buffers(), frame.strides(), o.rotationDegrees(), o.mirror(), o.cropOrNull(),
                outputs);
    }

    /** Frees the session (idempotent). */
    @Override
    public void close() {
        long h = handle.release();
        if (h != 0) {
            Native.sessionFree(h);
        }
    }
}
