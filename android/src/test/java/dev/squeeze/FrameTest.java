package dev.squeeze;

import static dev.squeeze.Assert.matchesReference;
import static dev.squeeze.Fixtures.H;
import static dev.squeeze.Fixtures.W;

import java.nio.ByteBuffer;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Camera frames through runFrame, against `squeeze run --frame-size` on the same pixels. */
class FrameTest {
    static Model model;
    static Session session;

    @BeforeAll
    static void open() throws SqueezeException {
        model = Model.load(InferenceTest.tiny());
        session = model.newSession();
    }

    @AfterAll
    static void close() {
        session.close();
        model.close();
    }

    static ByteBuffer run(Frame frame, FrameOptions options) throws SqueezeException {
        ByteBuffer[] out = session.allocateOutputs();
        session.runFrame(frame, options, out);
        return out[0];
    }

    /** A slice of {@code buffer}: {@code length} bytes from {@code offset}, its own address 0. */
    static ByteBuffer slice(ByteBuffer buffer, int offset, int length) {
        ByteBuffer d = buffer.duplicate();
        d.position(offset).limit(offset + length);
        return d.slice();
    }

    @Test
    void rgbaRotated90() throws Exception {
        Frame frame = Frame.packed(Frame.PixelFormat.RGBA, Fixtures.direct(Fixtures.rgba()), W, H, 4 * W);
        matchesReference("fout/probs.npy", run(frame, new FrameOptions().rotationDegrees(90)));
    }

    @Test
    void bgraIsRgbaWithChannelsSwapped() throws Exception {
        byte[] p = Fixtures.rgba();
        for (int i = 0; i < p.length; i += 4) {
            byte r = p[i];
            p[i] = p[i + 2];
            p[i + 2] = r;
        }
        Frame frame = new Frame(Frame.PixelFormat.BGRA, W, H,
                new Frame.Plane(Fixtures.direct(p), 4 * W, 4));
        matchesReference("fout/probs.npy", run(frame, new FrameOptions().rotationDegrees(90)));
    }

    @Test
    void paddedRowsWithCropMirrorAndRotation() throws Exception {
        // Rows padded as camera buffers often are; the CLI reads the same
        // pixels tightly packed.
        int rowStride = 4 * W + 20;
        byte[] tight = Fixtures.rgba();
        byte[] padded = new byte[rowStride * (H - 1) + 4 * W];
        for (int y = 0; y < H; y++) {
            System.arraycopy(tight, y * 4 * W, padded, y * rowStride, 4 * W);
        }
        Frame frame = Frame.packed(Frame.PixelFormat.RGBA, Fixtures.direct(padded), W, H, rowStride);
        FrameOptions options = new FrameOptions().crop(8, 4, 64, 60).mirror(true).rotationDegrees(180);
        matchesReference("fcrop/probs.npy", run(frame, options));
    }

    @Test
    void nv21AsAndroidHandsItOver() throws Exception {
        // YUV_420_888 over NV21 memory, as CameraX gives it: Y, then U and V
        // as two overlapping views of the interleaved VU bytes (pixel stride
        // 2), each ending at its own last sample.
        ByteBuffer all = Fixtures.direct(Fixtures.nv21());
        int chroma = W * H / 2;
        Frame frame = new Frame(Frame.PixelFormat.YUV_420, W, H,
                new Frame.Plane(slice(all, 0, W * H), W, 1),
                new Frame.Plane(slice(all, W * H + 1, chroma - 1), W, 2),
                new Frame.Plane(slice(all, W * H, chroma - 1), W, 2));
        matchesReference("fnv21/probs.npy", run(frame, new FrameOptions().rotationDegrees(270)));
    }

    @Test
    void i420PlanesOfTheSamePixels() throws Exception {
        // The same pixels as three separate planes, pixel stride 1.
        byte[] nv21 = Fixtures.nv21();
        byte[] u = new byte[W * H / 4];
        byte[] v = new byte[W * H / 4];
        for (int i = 0; i < u.length; i++) {
            v[i] = nv21[W * H + 2 * i];
            u[i] = nv21[W * H + 2 * i + 1];
        }
        byte[] y = java.util.Arrays.copyOf(nv21, W * H);
        Frame frame = new Frame(Frame.PixelFormat.YUV_420, W, H,
                new Frame.Plane(Fixtures.direct(y), W, 1),
                new Frame.Plane(Fixtures.direct(u), W / 2, 1),
                new Frame.Plane(Fixtures.direct(v), W / 2, 1));
        matchesReference("fnv21/probs.npy", run(frame, new FrameOptions().rotationDegrees(270)));
    }
}
