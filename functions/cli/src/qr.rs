//! QR codes as text: two modules per character with Unicode half blocks, so a phone's camera
//! can scan a URL straight off the terminal.

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

/// The QR code of `text`, as lines of half blocks with the standard quiet zone. By default the
/// light modules are drawn (as `qrencode -t UTF8` does), which reads right on the usual dark
/// terminal background; `light_background` draws the dark modules instead.
pub(crate) fn render(text: &str, light_background: bool) -> anyhow::Result<String> {
    let code = QrCode::new(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot make a QR code of this URL: {e}"))?;
    let mut renderer = code.render::<Dense1x2>();
    if !light_background {
        renderer
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark);
    }
    Ok(renderer.build())
}
