package dev.squeeze;

import static dev.squeeze.Assert.throwsStatus;
import static dev.squeeze.Fixtures.H;
import static dev.squeeze.Fixtures.W;
import static dev.squeeze.SqueezeException.Status.BUFFER_SIZE;
import static dev.squeeze.SqueezeException.Status.FRAME;
import static dev.squeeze.SqueezeException.Status.INVALID_ARGUMENT;
import static dev.squeeze.SqueezeException.Status.INVALID_MODEL;
import static dev.squeeze.SqueezeException.Status.IO;
import static dev.squeeze.SqueezeException.Status.NULL_POINTER;
import static dev.squeeze.SqueezeException.Status.UNSUPPORTED;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.FileInputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every failure path: the status each one throws. */
class ErrorTest {
    static Model model;
    static Session session;

    @TempDir
    Path tmp;

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

    static byte[] sqz() throws Exception {
        return Files.readAllBytes(Fixtures.file("tiny.sqz"));
    }

    Path write(String name, byte[] bytes) throws Exception {
        Path p = tmp.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    // Loading.

    @Test
    void missingFileIsIo() {
        SqueezeException e = throwsStatus(IO, () -> Model.load(tmp.resolve("nope.sqz").toString()));
        assertTrue(e.getMessage().contains("nope.sqz"), e.getMessage());
    }

    @Test
    void nullPathIsNullPointer() {
        throwsStatus(NULL_POINTER, () -> Model.load(null));
    }

    @Test
    void corruptFileIsInvalidModel() throws Exception {
        byte[] bytes = sqz();
        for (int i = bytes.length / 2; i < bytes.length / 2 + 8; i++) {
            bytes[i] ^= 0x5a;
        }
        throwsStatus(INVALID_MODEL, () -> Model.load(write("corrupt.sqz", bytes).toString()));
    }

    @Test
    void truncatedFileIsInvalidModel() throws Exception {
        byte[] bytes = Arrays.copyOf(sqz(), sqz().length / 2);
        throwsStatus(INVALID_MODEL, () -> Model.load(write("truncated.sqz", bytes).toString()));
        throwsStatus(INVALID_MODEL, () -> Model.fromBuffer(Fixtures.direct(bytes)));
    }

    @Test
    void emptyAndGarbageFiles() throws Exception {
        byte[] junk = new byte[4096];
        Arrays.fill(junk, (byte) 7);
        throwsStatus(INVALID_MODEL, () -> Model.fromBuffer(Fixtures.direct(junk)));
        throwsStatus(INVALID_MODEL, () -> Model.fromBuffer(ByteBuffer.allocateDirect(0)));
        // A path that is not a .sqz is taken for ONNX (imported or not,
        // depending on the build): an invalid model either way.
        for (byte[] bytes : new byte[][] {new byte[0], junk}) {
            throwsStatus(INVALID_MODEL, () -> Model.load(write("junk.sqz", bytes).toString()));
        }
    }

    @Test
    void heapOrNullBufferCannotBeLoaded() throws Exception {
        throwsStatus(INVALID_ARGUMENT, () -> Model.fromBuffer(ByteBuffer.wrap(sqz())));
        throwsStatus(NULL_POINTER, () -> Model.fromBuffer(null));
    }

    @Test
    void badLoadOptions() {
        throwsStatus(INVALID_ARGUMENT, () -> Model.load(InferenceTest.tiny(), new LoadOptions().threads(-1)));
        // An instruction set this CPU lacks.
        boolean arm = System.getProperty("os.arch").matches("aarch64|arm64");
        LoadOptions.Isa foreign = arm ? LoadOptions.Isa.AVX2 : LoadOptions.Isa.NEON;
        throwsStatus(UNSUPPORTED, () -> Model.load(InferenceTest.tiny(), new LoadOptions().isa(foreign)));
    }

    @Test
    void badDescriptorsAndRegions() throws Exception {
        throwsStatus(INVALID_ARGUMENT, () -> Model.fromFileDescriptor(-1, 0, 0, null));
        Path file = write("model.sqz", sqz());
        long size = Files.size(file);
        try (FileInputStream in = new FileInputStream(file.toFile())) {
            int fd = InferenceTest.fdOf(in.getFD());
            throwsStatus(INVALID_ARGUMENT, () -> Model.fromFileDescriptor(fd, -1, 0, null));
            throwsStatus(INVALID_ARGUMENT, () -> Model.fromFileDescriptor(fd, 0, -5, null));
            throwsStatus(INVALID_ARGUMENT, () -> Model.fromFileDescriptor(fd, size + 1, 0, null));
            SqueezeException e = assertThrows(SqueezeException.class,
                    () -> Model.fromFileDescriptor(fd, 0, size + 100, null));
            assertTrue(e.status() == INVALID_ARGUMENT || e.status() == INVALID_MODEL, e::toString);
            // A region that is not the model.
            throwsStatus(INVALID_MODEL, () -> Model.fromFileDescriptor(fd, 7, size - 7, null));
        }
    }

    // Running.

    static ByteBuffer[] inputs() {
        ByteBuffer[] in = session.allocateInputs();
        in[0].asFloatBuffer().put(Fixtures.input());
        return in;
    }

    @Test
    void wrongBufferSizesAreBufferSize() {
        ByteBuffer[] small = {ByteBuffer.allocateDirect(3 * 64 * 64 * 4 - 4)};
        throwsStatus(BUFFER_SIZE, () -> session.run(small, session.allocateOutputs()));
        ByteBuffer[] bigOut = {ByteBuffer.allocateDirect(44)};
        throwsStatus(BUFFER_SIZE, () -> session.run(inputs(), bigOut));
    }

    @Test
    void heapBuffersAreInvalidArgument() {
        ByteBuffer[] heapIn = {ByteBuffer.allocate(3 * 64 * 64 * 4)};
        SqueezeException e = throwsStatus(INVALID_ARGUMENT, () -> session.run(heapIn, session.allocateOutputs()));
        assertTrue(e.getMessage().contains("not direct"), e.getMessage());
        ByteBuffer[] heapOut = {ByteBuffer.allocate(40)};
        throwsStatus(INVALID_ARGUMENT, () -> session.run(inputs(), heapOut));
    }

    @Test
    void wrongCountsAreInvalidArgument() {
        throwsStatus(INVALID_ARGUMENT, () -> session.run(new ByteBuffer[0], session.allocateOutputs()));
        ByteBuffer[] twoOut = {ByteBuffer.allocateDirect(40), ByteBuffer.allocateDirect(40)};
        throwsStatus(INVALID_ARGUMENT, () -> session.run(inputs(), twoOut));
    }

    @Test
    void nullsAreNullPointer() {
        throwsStatus(NULL_POINTER, () -> session.run(null, session.allocateOutputs()));
        throwsStatus(NULL_POINTER, () -> session.run(inputs(), null));
        throwsStatus(NULL_POINTER, () -> session.run(new ByteBuffer[1], session.allocateOutputs()));
        throwsStatus(NULL_POINTER, () -> session.run(inputs(), new ByteBuffer[1]));
        throwsStatus(NULL_POINTER, () -> session.runFrame(null, null, session.allocateOutputs()));
        Frame frame = Frame.packed(Frame.PixelFormat.RGBA, null, W, H, 4 * W);
        throwsStatus(NULL_POINTER, () -> session.runFrame(frame, null, session.allocateOutputs()));
        throwsStatus(NULL_POINTER, () -> session.runFrame(rgba(4 * W, 4), null, null));
    }

    @Test
    void theSessionStillWorksAfterFailures() throws Exception {
        throwsStatus(BUFFER_SIZE, () -> session.run(inputs(), new ByteBuffer[] {ByteBuffer.allocateDirect(4)}));
        ByteBuffer[] out = session.allocateOutputs();
        session.run(inputs(), out);
        Assert.matchesReference("out/probs.npy", out[0]);
    }

    // Frames.

    static Frame rgba(int rowStride, int pixelStride) {
        return new Frame(Frame.PixelFormat.RGBA, W, H,
                new Frame.Plane(Fixtures.direct(Fixtures.rgba()), rowStride, pixelStride));
    }

    void frameFails(Frame frame, FrameOptions options) {
        throwsStatus(FRAME, () -> session.runFrame(frame, options, session.allocateOutputs()));
    }

    @Test
    void badStridesAreFrame() {
        frameFails(rgba(4 * W - 4, 4), null); // rows overlap
        frameFails(rgba(4 * W, 2), null); // pixel stride under the 3 bytes read (R, G, B)
        frameFails(rgba(4 * W + 4, 4), null); // runs past the buffer
        frameFails(rgba(-1, 4), null);
        frameFails(rgba(4 * W, -4), null);
        Frame tooSmall = Frame.packed(Frame.PixelFormat.RGBA,
                ByteBuffer.allocateDirect(4 * W * H - 2), W, H, 4 * W); // the last pixel's B missing
        frameFails(tooSmall, null);
    }

    @Test
    void badGeometryIsFrame() {
        Frame ok = rgba(4 * W, 4);
        frameFails(ok, new FrameOptions().rotationDegrees(45));
        frameFails(ok, new FrameOptions().rotationDegrees(-90));
        frameFails(ok, new FrameOptions().crop(W - 8, 0, 16, 16));
        frameFails(ok, new FrameOptions().crop(-1, 0, 16, 16));
        frameFails(new Frame(Frame.PixelFormat.RGBA, 0, H,
                new Frame.Plane(Fixtures.direct(Fixtures.rgba()), 4 * W, 4)), null);
        frameFails(new Frame(Frame.PixelFormat.RGBA, -W, H,
                new Frame.Plane(Fixtures.direct(Fixtures.rgba()), 4 * W, 4)), null);
        assertThrows(IllegalArgumentException.class, () -> new FrameOptions().crop(0, 0, 0, 10));
    }

    @Test
    void yuvPlanesThatDoNotFitAreFrame() {
        ByteBuffer y = ByteBuffer.allocateDirect(W * H);
        ByteBuffer chroma = ByteBuffer.allocateDirect(W * H / 4 - 1);
        frameFails(new Frame(Frame.PixelFormat.YUV_420, W, H, new Frame.Plane(y, W, 1),
                new Frame.Plane(chroma, W / 2, 1), new Frame.Plane(chroma, W / 2, 1)), null);
        assertThrows(IllegalArgumentException.class,
                () -> new Frame(Frame.PixelFormat.YUV_420, W, H, new Frame.Plane(y, W, 1)));
    }

    @Test
    void nativeStrideArraysAreChecked() throws Exception {
        // What Frame cannot produce, straight at the JNI entry point.
        long h = nativeSession();
        try {
            ByteBuffer[] planes = {Fixtures.direct(Fixtures.rgba())};
            ByteBuffer[] out = session.allocateOutputs();
            throwsStatus(FRAME, () -> Native.sessionRunFrame(h, 1, W, H, planes, new int[] {4 * W}, 0, false, null, out));
            throwsStatus(FRAME, () -> Native.sessionRunFrame(h, 1, W, H, planes, null, 0, false, null, out));
            throwsStatus(INVALID_ARGUMENT, () -> Native.sessionRunFrame(h, 9, W, H, planes, new int[] {4 * W, 4}, 0, false, null, out));
            throwsStatus(NULL_POINTER, () -> Native.sessionRunFrame(h, 1, W, H, null, new int[0], 0, false, null, out));
            Native.sessionRunFrame(h, 1, W, H, planes, new int[] {4 * W, 4}, 90, false, null, out);
            Assert.matchesReference("fout/probs.npy", out[0]);
        } finally {
            Native.sessionFree(h);
        }
    }

    static long nativeSession() throws SqueezeException {
        return Native.sessionCreate(model.handle());
    }

    @Test
    void nullAndBadHandlesAtTheJniEntryPoints() throws Exception {
        throwsStatus(NULL_POINTER, () -> Native.modelPortCount(0, false));
        throwsStatus(NULL_POINTER, () -> Native.modelPortName(0, false, 0));
        throwsStatus(NULL_POINTER, () -> Native.modelLabels(0));
        throwsStatus(NULL_POINTER, () -> Native.sessionCreate(0));
        throwsStatus(NULL_POINTER, () -> Native.sessionRun(0, inputs(), session.allocateOutputs()));
        throwsStatus(NULL_POINTER, () -> Native.sessionRunFrame(0, 1, W, H,
                new ByteBuffer[] {Fixtures.direct(Fixtures.rgba())}, new int[] {4 * W, 4}, 0, false, null,
                session.allocateOutputs()));
        long m = model.handle();
        throwsStatus(INVALID_ARGUMENT, () -> Native.modelPortName(m, false, 1));
        throwsStatus(INVALID_ARGUMENT, () -> Native.modelPortShape(m, true, 5));
        throwsStatus(INVALID_ARGUMENT, () -> Native.modelPortDtype(m, true, -1));
        throwsStatus(INVALID_ARGUMENT, () -> Native.modelLoadPath("bad\0path", 0, 0, false));
        throwsStatus(INVALID_ARGUMENT, () -> Native.modelLoadPath(InferenceTest.tiny(), 0, 99, false));
        // Frees of 0 are no-ops.
        Native.modelFree(0);
        Native.sessionFree(0);
    }

    @Test
    void statusCodesMapBothWays() {
        for (SqueezeException.Status s : SqueezeException.Status.values()) {
            SqueezeException e = new SqueezeException(s.code(), "m");
            assertEquals(s, e.status());
            assertEquals("m", e.getMessage());
        }
        assertEquals(11, SqueezeException.Status.POISONED.code());
        SqueezeException unknown = new SqueezeException(42, "future");
        assertEquals(SqueezeException.Status.UNKNOWN, unknown.status());
        assertEquals(42, unknown.statusCode());
        assertTrue(unknown.toString().contains("[UNKNOWN]: future"), unknown::toString);
        for (DType d : DType.values()) {
            assertEquals(d, DType.fromCode(d.code()));
        }
        assertThrows(IllegalArgumentException.class, () -> DType.fromCode(5));
    }
}
