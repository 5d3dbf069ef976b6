package dev.squeeze.android;

import android.content.res.AssetFileDescriptor;
import android.graphics.ImageFormat;
import android.media.Image;

import dev.squeeze.Frame;
import dev.squeeze.LoadOptions;
import dev.squeeze.Model;
import dev.squeeze.SqueezeException;

/** The Android-only helpers: models from APK assets, frames from {@link Image}s. */
public final class AndroidSqueeze {
    private AndroidSqueeze() {}

    /**
     * Loads a model stored uncompressed in the APK, from
     * {@code context.getAssets().openFd("model.sqz")}: the library maps the
     * asset's region of the APK in place, nothing is copied into the Java
     * heap. (Keep {@code .sqz} assets uncompressed: {@code androidResources
     * { noCompress += "sqz" }}; {@code openFd} fails on compressed ones.)
     * The descriptor stays the caller's: close it once this returns.
     *
     * @param options null for the defaults
     */
    public static Model fromAsset(AssetFileDescriptor afd, LoadOptions options) throws SqueezeException {
        long length = afd.getLength();
        // UNKNOWN_LENGTH: the asset runs to the end of the file (length 0).
        return Model.fromFileDescriptor(afd.getParcelFileDescriptor().getFd(), afd.getStartOffset(),
                length == AssetFileDescriptor.UNKNOWN_LENGTH ? 0 : length, options);
    }

    /**
     * A frame over a {@link ImageFormat#YUV_420_888} image's planes (Y, U, V
     * with their row and pixel strides), read in place: valid until the
     * image is closed. (CameraX's {@code ImageProxy.getImage()} gives one.)
     *
     * @throws IllegalArgumentException for another image format
     */
    public static Frame frameOf(Image image) {
        if (image.getFormat() != ImageFormat.YUV_420_888) {
            throw new IllegalArgumentException(
                    "image format " + image.getFormat() + " is not YUV_420_888");
        }
        Image.Plane[] p = image.getPlanes();
        return new Frame(Frame.PixelFormat.YUV_420, image.getWidth(), image.getHeight(),
                plane(p[0]), plane(p[1]), plane(p[2]));
    }

    private static Frame.Plane plane(Image.Plane p) {
        return new Frame.Plane(p.getBuffer(), p.getRowStride(), p.getPixelStride());
    }
}
