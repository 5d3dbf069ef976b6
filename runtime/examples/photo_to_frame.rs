//! Turns a photo into what a phone's camera hands an app: an NV21 frame
//! (BT.601 full range) from a landscape sensor, with the picture rotated
//! as a portrait-held phone records it, so that the app must rotate it by
//! 90° clockwise (`rotationDegrees` 90) to see it upright. Used by
//! scripts/demo.sh.
//!
//! `photo_to_frame PHOTO OUT.nv21 [WIDTH HEIGHT]` (default 1920 1080).

use image::imageops::{self, FilterType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(photo), Some(out)) = (args.get(1), args.get(2)) else {
        return Err("usage: photo_to_frame PHOTO OUT.nv21 [WIDTH HEIGHT]".into());
    };
    let width: u32 = args.get(3).map_or(Ok(1920), |s| s.parse())?;
    let height: u32 = args.get(4).map_or(Ok(1080), |s| s.parse())?;
    if width % 2 == 1 || height % 2 == 1 {
        return Err("NV21 here needs an even width and height".into());
    }
    // Upright, the picture is portrait (height x width); the sensor sees it
    // turned a quarter counter-clockwise.
    let img = image::open(photo)?.to_rgb8();
    let scale = f64::max(
        height as f64 / img.width() as f64,
        width as f64 / img.height() as f64,
    );
    let (w, h) = (
        (img.width() as f64 * scale).ceil() as u32,
        (img.height() as f64 * scale).ceil() as u32,
    );
    let img = imageops::resize(&img, w, h, FilterType::CatmullRom);
    let upright =
        imageops::crop_imm(&img, (w - height) / 2, (h - width) / 2, height, width).to_image();
    let sensor = imageops::rotate270(&upright);
    let (w, h) = (width as usize, height as usize);
    let mut nv21 = vec![0u8; w * h + w * h / 2];
    let yuv = |p: &image::Rgb<u8>| {
        let [r, g, b] = p.0.map(f32::from);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        (y, (b - y) / 1.772 + 128.0, (r - y) / 1.402 + 128.0)
    };
    let byte = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    for (x, y, p) in sensor.enumerate_pixels() {
        nv21[y as usize * w + x as usize] = byte(yuv(p).0);
    }
    // Chroma: the average of each 2x2 block, V then U.
    for cy in 0..h / 2 {
        for cx in 0..w / 2 {
            let (mut u, mut v) = (0.0, 0.0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (_, pu, pv) = yuv(sensor.get_pixel((2 * cx + dx) as u32, (2 * cy + dy) as u32));
                u += pu / 4.0;
                v += pv / 4.0;
            }
            let at = w * h + cy * w + 2 * cx;
            nv21[at] = byte(v);
            nv21[at + 1] = byte(u);
        }
    }
    std::fs::write(out, &nv21)?;
    println!(
        "{out}: {width}x{height} NV21 ({} bytes), rotated for --rotate 90",
        nv21.len()
    );
    Ok(())
}
