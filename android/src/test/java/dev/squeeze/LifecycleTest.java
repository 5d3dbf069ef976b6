package dev.squeeze;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;

import org.junit.jupiter.api.Test;

/** close() twice, and use after close. */
class LifecycleTest {
    @Test
    void modelCloseTwiceAndUseAfterClose() throws Exception {
        Model model = Model.load(InferenceTest.tiny());
        model.close();
        assertDoesNotThrow(model::close);
        assertThrows(IllegalStateException.class, model::inputs);
        assertThrows(IllegalStateException.class, model::outputs);
        assertThrows(IllegalStateException.class, model::labels);
        assertThrows(IllegalStateException.class, model::newSession);
    }

    @Test
    void sessionCloseTwiceAndUseAfterClose() throws Exception {
        try (Model model = Model.load(InferenceTest.tiny())) {
            Session session = model.newSession();
            ByteBuffer[] in = session.allocateInputs();
            ByteBuffer[] out = session.allocateOutputs();
            session.close();
            assertDoesNotThrow(session::close);
            assertThrows(IllegalStateException.class, () -> session.run(in, out));
            Frame frame = Frame.packed(Frame.PixelFormat.RGBA, Fixtures.direct(Fixtures.rgba()),
                    Fixtures.W, Fixtures.H, 4 * Fixtures.W);
            assertThrows(IllegalStateException.class, () -> session.runFrame(frame, null, out));
            assertThrows(IllegalStateException.class, () -> session.runFrame(null, null, out));
            assertThrows(IllegalStateException.class, session::allocateOutputs);
            assertThrows(IllegalStateException.class, session::allocateInputs);
            assertThrows(IllegalStateException.class, session::inputs);
            assertThrows(IllegalStateException.class, session::outputs);
        }
    }

    @Test
    void manyModelsAndSessionsComeAndGo() throws Exception {
        for (int i = 0; i < 50; i++) {
            try (Model model = Model.load(InferenceTest.tiny());
                    Session a = model.newSession();
                    Session b = model.newSession()) {
                Assert.matchesReference("out/probs.npy", InferenceTest.runInput(a));
                Assert.matchesReference("out/probs.npy", InferenceTest.runInput(b));
            }
        }
    }
}
