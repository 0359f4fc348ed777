//! Contact sheets: one picture of every job's candidates as labelled thumbnails, so a person can
//! review a run at a glance (`kromactl run sheet RUN -o sheet.png`). This is the pure layout and
//! drawing; the shell reads the images, builds the labels and writes the PNG.
//!
//! The sheet is white with dark text (it prints well); a thumbnail sits on a checkerboard, so
//! transparent parts show. Marks are coloured frames around the thumbnail, from the inside out:
//! winner green, approved blue, drifted orange, failed red; the same words head the label, so they
//! survive greyscale printing. Text uses the public-domain 8×8 glyphs of `font8x8`.

use font8x8::legacy::BASIC_LEGACY;
use image::{Rgba, RgbaImage};

use super::drift::{premultiplied_sums, spans};

/// One candidate's cell.
pub struct Tile {
    /// The candidate's image fitted into the thumbnail box, or `None` (no image: drawn as a
    /// crossed box).
    pub image: Option<RgbaImage>,
    /// Label lines under the thumbnail, e.g. "#2 pass", "chroma 1.3", "drift s0.12 p0.40".
    /// ASCII; anything else is drawn as '?'. Lines longer than the cell are cut.
    pub lines: Vec<String>,
    pub mark: Mark,
}

/// How a candidate stands out on the sheet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mark {
    pub winner: bool,
    pub approved: bool,
    pub failed: bool,
    pub drifted: bool,
}

/// One job (scene): a title and its candidates left to right.
pub struct Row {
    pub title: String,
    pub tiles: Vec<Tile>,
}

/// The most pixels a sheet may have (160 MB of RGBA).
pub const MAX_SHEET_PIXELS: u64 = 40_000_000;

/// The largest thumbnail side: [`thumbnail`] fits into at most this, [`render`] refuses more.
pub const MAX_THUMB_SIDE: u32 = 4096;

/// Fits `image` into a `side`×`side` box keeping its aspect ratio, for a [`Tile`]: the longer
/// side becomes `side` (a small image is enlarged), the shorter one is rounded, at least 1.
///
/// Each thumbnail pixel is the alpha-weighted mean of the pixels it covers, so the colour of
/// transparent pixels does not bleed into a cut-out's outline. An empty image or a side of 0
/// gives a 0×0 thumbnail; a side above [`MAX_THUMB_SIDE`] is taken as that.
pub fn thumbnail(image: &RgbaImage, side: u32) -> RgbaImage {
    let (width, height) = image.dimensions();
    let side = side.min(MAX_THUMB_SIDE);
    if width == 0 || height == 0 || side == 0 {
        return RgbaImage::new(0, 0);
    }
    // The shorter side, rounded and at least 1 pixel. The products are below 2⁶⁴ since all
    // factors come from `u32`.
    let (long, short) = (u64::from(width.max(height)), u64::from(width.min(height)));
    let scaled = (short * u64::from(side) + long / 2) / long;
    let scaled_short = scaled.clamp(1, u64::from(side)) as u32;
    let (new_width, new_height) = if width >= height {
        (side, scaled_short)
    } else {
        (scaled_short, side)
    };
    let columns = spans(width, new_width);
    let rows = spans(height, new_height);
    let mut output = RgbaImage::new(new_width, new_height);
    for (out_y, &row_span) in (0..).zip(&rows) {
        for (out_x, &column_span) in (0..).zip(&columns) {
            let ([red, green, blue, alpha], count) =
                premultiplied_sums(image, column_span, row_span);
            let colour = |sum: u128| (sum + alpha / 2).checked_div(alpha).unwrap_or(0).min(255);
            let alpha = (alpha + count / 2).checked_div(count).unwrap_or(0).min(255);
            let pixel = [colour(red), colour(green), colour(blue), alpha].map(|c| c as u8);
            output.put_pixel(out_x, out_y, Rgba(pixel));
        }
    }
    output
}

/// The sheet: a header line `title`, then one band per row: the row title, then its tiles.
/// Errors (a String saying why) when the sheet would be larger than MAX_SHEET_PIXELS.
///
/// The sheet is as wide as its widest row (at least [`MIN_WIDTH`]); titles and labels that do not
/// fit are cut. A tile image larger than the thumbnail box is fitted into it first.
pub fn render(title: &str, rows: &[Row], thumb_side: u32) -> Result<RgbaImage, String> {
    if thumb_side > MAX_THUMB_SIDE {
        return Err(format!(
            "a thumbnail side of {thumb_side} is more than the largest, {MAX_THUMB_SIDE}"
        ));
    }
    let layout = Layout::new(rows, thumb_side)?;
    // The layout checked the size, so both fit in a `u32`.
    let mut sheet = RgbaImage::from_pixel(layout.width as u32, layout.height as u32, BACKGROUND);
    let room = layout.width - 2 * MARGIN;
    let title_pen = Pen {
        scale: TITLE_SCALE,
        colour: TEXT,
    };
    draw_text(&mut sheet, (MARGIN, MARGIN), title, title_pen, room);
    fill(&mut sheet, (0, HEADER_HEIGHT - 2), (layout.width, 2), RULE);
    for (row, &top) in rows.iter().zip(&layout.row_tops) {
        draw_text(
            &mut sheet,
            (MARGIN, top + MARGIN),
            &row.title,
            title_pen,
            room,
        );
        let cells_top = top + MARGIN + TITLE_HEIGHT + MARGIN / 2;
        for (column, tile) in (0..).zip(&row.tiles) {
            draw_tile(
                &mut sheet,
                (layout.cell_left(column), cells_top),
                tile,
                &layout,
            );
        }
    }
    Ok(sheet)
}

/// The narrowest sheet, so that a header of about 38 characters fits.
pub const MIN_WIDTH: u64 = 640;

/// The outer margin, and the gap between cells and between bands.
const MARGIN: u64 = 8;

/// The width of one mark's frame; the cell keeps room for all four around the thumbnail.
const RING: u64 = 4;
const FRAME: u64 = 4 * RING;

/// Header and row titles are drawn at twice the glyphs' size.
const TITLE_SCALE: u64 = 2;
const TITLE_HEIGHT: u64 = 8 * TITLE_SCALE;
const HEADER_HEIGHT: u64 = MARGIN + TITLE_HEIGHT + MARGIN;

const BACKGROUND: Rgba<u8> = Rgba([255, 255, 255, 255]);
const TEXT: Rgba<u8> = Rgba([32, 32, 32, 255]);
const RULE: Rgba<u8> = Rgba([200, 200, 200, 255]);
const OUTLINE: Rgba<u8> = Rgba([170, 170, 170, 255]);
const CHECKER_LIGHT: Rgba<u8> = Rgba([235, 235, 235, 255]);
const CHECKER_DARK: Rgba<u8> = Rgba([200, 200, 200, 255]);
const CHECKER_SQUARE: u64 = 8;
const WINNER: Rgba<u8> = Rgba([0, 170, 60, 255]);
const APPROVED: Rgba<u8> = Rgba([30, 90, 220, 255]);
const DRIFTED: Rgba<u8> = Rgba([245, 140, 0, 255]);
const FAILED: Rgba<u8> = Rgba([220, 40, 40, 255]);

/// Where everything goes. Sizes are computed with saturating `u64` arithmetic, so any overflow
/// becomes a size above the limit, which is refused before a pixel is allocated.
struct Layout {
    width: u64,
    height: u64,
    thumb_side: u64,
    /// Label text is doubled when the cell is wide enough for 20 doubled characters.
    label_scale: u64,
    /// The top of each row's band.
    row_tops: Vec<u64>,
}

impl Layout {
    fn new(rows: &[Row], thumb_side: u32) -> Result<Layout, String> {
        let thumb_side = u64::from(thumb_side);
        let cell_width = thumb_side + 2 * FRAME;
        let label_scale = if cell_width >= 20 * 16 { 2 } else { 1 };
        let line_height = 8 * label_scale + 2;
        let widest = rows.iter().map(|row| row.tiles.len()).max().unwrap_or(0) as u64;
        let width = MARGIN
            .saturating_add(widest.saturating_mul(cell_width + MARGIN))
            .max(MIN_WIDTH);
        let mut height = HEADER_HEIGHT;
        let mut row_tops = Vec::new();
        for row in rows {
            row_tops.push(height);
            let mut band = MARGIN + TITLE_HEIGHT + MARGIN;
            if !row.tiles.is_empty() {
                let lines = row.tiles.iter().map(label_lines).max().unwrap_or(0);
                let labels = (lines as u64).saturating_mul(line_height);
                band = band
                    .saturating_add(MARGIN / 2 + cell_width)
                    .saturating_add(labels);
            }
            height = height.saturating_add(band);
            if width.saturating_mul(height) > MAX_SHEET_PIXELS {
                break;
            }
        }
        if width.saturating_mul(height) > MAX_SHEET_PIXELS {
            return Err(format!(
                "the sheet would have more than {MAX_SHEET_PIXELS} pixels ({} rows, up to {widest} \
                 candidates of {thumb_side} pixels in a row); use smaller thumbnails or fewer jobs",
                rows.len()
            ));
        }
        Ok(Layout {
            width,
            height,
            thumb_side,
            label_scale,
            row_tops,
        })
    }

    /// The left edge of the cell in `column`.
    fn cell_left(&self, column: u64) -> u64 {
        MARGIN + column * (self.thumb_side + 2 * FRAME + MARGIN)
    }
}

/// The lines of a tile's label: the mark's words, when it has any, then its own lines.
fn label_lines(tile: &Tile) -> usize {
    usize::from(!mark_words(tile.mark).is_empty()) + tile.lines.len()
}

/// The mark's words with their colours, in the order of its frames from the inside out.
fn mark_words(mark: Mark) -> Vec<(&'static str, Rgba<u8>)> {
    [
        (mark.winner, "WIN", WINNER),
        (mark.approved, "APPROVED", APPROVED),
        (mark.drifted, "DRIFTED", DRIFTED),
        (mark.failed, "FAILED", FAILED),
    ]
    .into_iter()
    .filter(|(set, _, _)| *set)
    .map(|(_, word, colour)| (word, colour))
    .collect()
}

/// A point or a size on the sheet, in pixels: x (or width), then y (or height).
type Pair = (u64, u64);

/// How text is drawn: each glyph `scale` times its size, in `colour`.
#[derive(Clone, Copy)]
struct Pen {
    scale: u64,
    colour: Rgba<u8>,
}

/// One cell whose top-left corner is `(left, top)`: the frames, the thumbnail and the label.
fn draw_tile(sheet: &mut RgbaImage, (left, top): Pair, tile: &Tile, layout: &Layout) {
    let side = layout.thumb_side;
    let (box_left, box_top) = (left + FRAME, top + FRAME);
    let words = mark_words(tile.mark);
    if words.is_empty() {
        draw_frame(sheet, (box_left - 1, box_top - 1), side + 2, 1, OUTLINE);
    }
    for (ring, (_, colour)) in (0..).zip(&words) {
        let offset = (ring + 1) * RING;
        let corner = (box_left - offset, box_top - offset);
        draw_frame(sheet, corner, side + 2 * offset, RING, *colour);
    }
    match &tile.image {
        Some(image) => {
            let fitted;
            let image = if u64::from(image.width()) > side || u64::from(image.height()) > side {
                fitted = thumbnail(image, side as u32);
                &fitted
            } else {
                image
            };
            let (width, height) = (u64::from(image.width()), u64::from(image.height()));
            let x = box_left + side.saturating_sub(width) / 2;
            let y = box_top + side.saturating_sub(height) / 2;
            draw_checkerboard(sheet, (x, y), (width, height));
            blend(sheet, (x, y), image);
        }
        None => draw_crossed_box(sheet, (box_left, box_top), side),
    }
    let cell_width = side + 2 * FRAME;
    let (scale, mut y) = (layout.label_scale, top + cell_width);
    if !words.is_empty() {
        let mut x = left;
        for &(word, colour) in &words {
            let room = (left + cell_width).saturating_sub(x);
            draw_text(sheet, (x, y), word, Pen { scale, colour }, room);
            x += (word.len() as u64 + 1) * 8 * scale;
        }
        y += 8 * scale + 2;
    }
    for line in &tile.lines {
        draw_text(
            sheet,
            (left, y),
            line,
            Pen {
                scale,
                colour: TEXT,
            },
            cell_width,
        );
        y += 8 * scale + 2;
    }
}

/// Fills a rectangle, clipped to the sheet.
fn fill(sheet: &mut RgbaImage, (left, top): Pair, (width, height): Pair, colour: Rgba<u8>) {
    let right = left.saturating_add(width).min(u64::from(sheet.width()));
    let bottom = top.saturating_add(height).min(u64::from(sheet.height()));
    for y in top..bottom {
        for x in left..right {
            // Both are below the sheet's `u32` sides.
            sheet.put_pixel(x as u32, y as u32, colour);
        }
    }
}

/// A square frame `thickness` wide whose outer edge is `side` long.
fn draw_frame(
    sheet: &mut RgbaImage,
    (left, top): Pair,
    side: u64,
    thickness: u64,
    colour: Rgba<u8>,
) {
    fill(sheet, (left, top), (side, thickness), colour);
    let far = side.saturating_sub(thickness);
    fill(sheet, (left, top + far), (side, thickness), colour);
    fill(sheet, (left, top), (thickness, side), colour);
    fill(sheet, (left + far, top), (thickness, side), colour);
}

fn draw_checkerboard(sheet: &mut RgbaImage, (left, top): Pair, (width, height): Pair) {
    for y in 0..height.div_ceil(CHECKER_SQUARE) {
        for x in 0..width.div_ceil(CHECKER_SQUARE) {
            let colour = [CHECKER_LIGHT, CHECKER_DARK][((x + y) % 2) as usize];
            let corner = (left + x * CHECKER_SQUARE, top + y * CHECKER_SQUARE);
            let size = (
                CHECKER_SQUARE.min(width - x * CHECKER_SQUARE),
                CHECKER_SQUARE.min(height - y * CHECKER_SQUARE),
            );
            fill(sheet, corner, size, colour);
        }
    }
}

/// Draws `image` over the (opaque) sheet with its alpha, clipped to the sheet.
fn blend(sheet: &mut RgbaImage, (left, top): Pair, image: &RgbaImage) {
    for (x, y, pixel) in image.enumerate_pixels() {
        let (sheet_x, sheet_y) = (left + u64::from(x), top + u64::from(y));
        if sheet_x >= u64::from(sheet.width()) || sheet_y >= u64::from(sheet.height()) {
            continue;
        }
        let under = sheet.get_pixel_mut(sheet_x as u32, sheet_y as u32);
        let alpha = u16::from(pixel[3]);
        for (under, over) in under.0.iter_mut().zip(pixel.0).take(3) {
            let mixed = u16::from(over) * alpha + u16::from(*under) * (255 - alpha);
            *under = ((mixed + 127) / 255) as u8;
        }
    }
}

/// A box with both diagonals, for a candidate without an image.
fn draw_crossed_box(sheet: &mut RgbaImage, (left, top): Pair, side: u64) {
    draw_frame(sheet, (left, top), side, 2, OUTLINE);
    for step in 0..side {
        fill(sheet, (left + step, top + step), (2, 2), OUTLINE);
        fill(sheet, (left + side - 1 - step, top + step), (2, 2), OUTLINE);
    }
}

/// Draws as many characters of `text` as fit in `room` pixels. Characters outside printable
/// ASCII are drawn as '?'.
fn draw_text(sheet: &mut RgbaImage, (left, top): Pair, text: &str, pen: Pen, room: u64) {
    let Pen { scale, colour } = pen;
    let advance = 8 * scale;
    for (position, character) in (0..room / advance).zip(text.chars()) {
        let printable = Some(character).filter(|c| (' '..='~').contains(c));
        // A printable ASCII character indexes the 128-glyph table.
        let glyph = BASIC_LEGACY[printable.unwrap_or('?') as usize];
        for (row, bits) in (0..).zip(glyph) {
            for column in 0..8u64 {
                // Bit 0 is the leftmost pixel.
                if bits & (1 << column) != 0 {
                    let x = left + position * advance + column * scale;
                    fill(sheet, (x, top + row * scale), (scale, scale), colour);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIDE: u32 = 128;
    const CELL: u64 = SIDE as u64 + 2 * FRAME;

    fn tile(image: Option<RgbaImage>, mark: Mark, lines: &[&str]) -> Tile {
        let lines = lines.iter().map(|line| line.to_string()).collect();
        Tile { image, lines, mark }
    }

    fn blue() -> Option<RgbaImage> {
        let colour = Rgba([90, 140, 200, 255]);
        Some(RgbaImage::from_pixel(SIDE, SIDE * 3 / 4, colour))
    }

    fn row(tiles: Vec<Tile>) -> Row {
        let title = "scene 1".to_owned();
        Row { title, tiles }
    }

    /// A row of `n` labelled candidates with images.
    fn row_of(n: usize) -> Row {
        let labelled = |k| {
            tile(
                blue(),
                Mark::default(),
                &[&format!("#{k} pass"), "chroma 1"],
            )
        };
        row((0..n).map(labelled).collect())
    }

    fn without_images(n: usize, lines: &[&str]) -> Row {
        row((0..n).map(|_| tile(None, Mark::default(), lines)).collect())
    }

    fn mark(winner: bool, approved: bool) -> Mark {
        let mut mark = Mark::default();
        (mark.winner, mark.approved) = (winner, approved);
        mark
    }

    fn size(rows: &[Row], side: u32) -> (u32, u32) {
        render("run 42", rows, side).unwrap().dimensions()
    }

    /// How many pixels of `colour` the rectangle `[left, top, width, height]` holds.
    fn count(sheet: &RgbaImage, rectangle: [u64; 4], colour: Rgba<u8>) -> usize {
        let [left, top, width, height] = rectangle.map(|value| value as u32);
        let part = image::imageops::crop_imm(sheet, left, top, width, height).to_image();
        part.pixels().filter(|pixel| **pixel == colour).count()
    }

    /// The top of the thumbnail boxes (with their frames) of a row starting at `row_top`.
    fn cells_top(row_top: u64) -> u64 {
        row_top + MARGIN + TITLE_HEIGHT + MARGIN / 2
    }

    #[test]
    fn the_sheet_grows_with_rows_tiles_and_thumbnail_side() {
        let (width_5, height_1) = size(&[row_of(5)], SIDE);
        let (width_6, _) = size(&[row_of(6)], SIDE);
        assert_eq!(u64::from(width_6 - width_5), CELL + MARGIN);
        assert!(width_5 >= 5 * SIDE && height_1 >= SIDE);
        let (_, height_2) = size(&[row_of(5), row_of(5)], SIDE);
        let (_, height_3) = size(&[row_of(5), row_of(5), row_of(5)], SIDE);
        assert_eq!(height_3 - height_2, height_2 - height_1);
        assert!(height_2 - height_1 >= SIDE);
        // The widest row sets the width, whatever its place.
        assert_eq!(size(&[row_of(2), row_of(6), row_of(0)], SIDE).0, width_6);
        let (width_big, height_big) = size(&[row_of(6)], SIDE * 2);
        assert!(width_big >= 12 * SIDE && height_big >= height_1 + SIDE);
    }

    #[test]
    fn no_rows_give_a_small_sheet_with_the_header() {
        let sheet = render("run 42: nothing yet", &[], SIDE).unwrap();
        assert_eq!(sheet.dimensions(), (MIN_WIDTH as u32, HEADER_HEIGHT as u32));
        let header = [0, 0, MIN_WIDTH, HEADER_HEIGHT - 2];
        assert!(count(&sheet, header, TEXT) > 50);
        assert_eq!(count(&render("", &[], SIDE).unwrap(), header, TEXT), 0);
    }

    #[test]
    fn marks_are_coloured_frames_around_the_thumbnail() {
        let marks = [
            mark(false, false),
            mark(true, false),
            mark(false, true),
            mark(true, true),
        ];
        let rows = [row(marks
            .map(|mark| tile(blue(), mark, &["#0 pass"]))
            .into())];
        let sheet = render("run 42", &rows, SIDE).unwrap();
        let layout = Layout::new(&rows, SIDE).unwrap();
        let top = cells_top(layout.row_tops[0]);
        let colours = |column: u64| {
            let cell = [layout.cell_left(column), top, CELL, CELL];
            (count(&sheet, cell, WINNER), count(&sheet, cell, APPROVED))
        };
        let (plain, winner, approved, both) = (colours(0), colours(1), colours(2), colours(3));
        assert_eq!(plain, (0, 0));
        assert!(winner.0 > 500 && winner.1 == 0, "{winner:?}");
        assert!(approved.0 == 0 && approved.1 > 500, "{approved:?}");
        assert!(both.0 > 500 && both.1 > 500, "{both:?}");
        // With both, blue is outside and green inside.
        let (left, middle) = (layout.cell_left(3), (top + CELL / 2) as u32);
        let at = |x: u64| *sheet.get_pixel(x as u32, middle);
        let (outer, inner) = (at(left + FRAME - 2 * RING + 1), at(left + FRAME - RING + 1));
        assert_eq!((outer, inner), (APPROVED, WINNER));
        // The words say it too, in the label under the thumbnail.
        let label = [left, top + CELL, CELL, 10];
        assert!(count(&sheet, label, WINNER) > 10 && count(&sheet, label, APPROVED) > 10);
    }

    #[test]
    fn labels_outside_ascii_are_question_marks_and_long_labels_are_cut() {
        let sheet_of = |line: &str| {
            let rows = [row(vec![tile(blue(), Mark::default(), &[line])])];
            render("run é", &rows, SIDE).unwrap()
        };
        assert_eq!(sheet_of("#1 é 中 \u{1F600}\t"), sheet_of("#1 ? ? ??"));
        assert_ne!(sheet_of("#1 pass"), sheet_of("#1 fail"));
        let long = "drift s0.12 p0.40 ".repeat(200);
        let cut = sheet_of(&long);
        assert_eq!(cut.dimensions(), sheet_of("short").dimensions());
        // A line is cut at the cell's width: nothing is drawn past it.
        assert_eq!(cut, sheet_of(&long[..CELL as usize / 8]));
    }

    #[test]
    fn transparent_thumbnails_sit_on_a_checkerboard_and_missing_ones_are_crossed() {
        let transparent = Some(RgbaImage::new(SIDE, SIDE));
        let rows = [row(vec![
            tile(transparent, Mark::default(), &[]),
            tile(None, Mark::default(), &[]),
        ])];
        let sheet = render("", &rows, SIDE).unwrap();
        let layout = Layout::new(&rows, SIDE).unwrap();
        let top = cells_top(layout.row_tops[0]) + FRAME;
        let side = u64::from(SIDE);
        let transparent = [layout.cell_left(0) + FRAME, top, side, side];
        let quarter = (SIDE * SIDE / 4) as usize;
        assert!(count(&sheet, transparent, CHECKER_LIGHT) > quarter);
        assert!(count(&sheet, transparent, CHECKER_DARK) > quarter);
        let (left, top) = (layout.cell_left(1) + FRAME, top);
        // The frame and both diagonals, which cross in the middle.
        assert!(count(&sheet, [left, top, side, side], OUTLINE) > 4 * SIDE as usize);
        let middle = [left + side / 2 - 1, top + side / 2 - 1, 2, 2];
        assert!(count(&sheet, middle, OUTLINE) > 0);
    }

    #[test]
    fn a_huge_sheet_is_refused_before_it_is_drawn() {
        let rows: Vec<Row> = (0..10_000).map(|_| without_images(3, &["#0"])).collect();
        let error = render("run 42", &rows, SIDE).unwrap_err();
        assert!(error.contains("more than 40000000 pixels"), "{error}");
        let wide = [without_images(100_000, &[])];
        assert!(render("", &wide, SIDE).is_err());
        let mut tall = tile(None, Mark::default(), &[]);
        tall.lines = vec![String::new(); 1_000_000];
        assert!(render("", &[row(vec![tall])], SIDE).is_err());
        assert!(render("", &[without_images(1, &[])], MAX_THUMB_SIDE + 1).is_err());
        assert!(render("", &[without_images(1, &[])], u32::MAX).is_err());
        assert!(render("", &[row_of(1)], MAX_THUMB_SIDE).is_ok());
        assert!(render("", &[row_of(1)], 0).is_ok());
    }

    #[test]
    fn a_large_image_in_a_tile_is_fitted_into_its_box() {
        let black = Rgba([0, 0, 0, 255]);
        let big = Some(RgbaImage::from_pixel(1000, 500, black));
        let sheet = render("", &[row(vec![tile(big, Mark::default(), &[])])], 64).unwrap();
        let n_black = sheet.pixels().filter(|pixel| **pixel == black).count();
        assert_eq!(n_black, 64 * 32);
    }

    #[test]
    fn thumbnails_keep_the_aspect_ratio() {
        let fit =
            |width, height, side| thumbnail(&RgbaImage::new(width, height), side).dimensions();
        assert_eq!(fit(400, 200, 128), (128, 64));
        assert_eq!(fit(200, 400, 128), (64, 128));
        assert_eq!(fit(300, 300, 128), (128, 128));
        assert_eq!(fit(1000, 333, 128), (128, 43));
        assert_eq!(fit(1, 1000, 128), (1, 128));
        assert_eq!(fit(1000, 1, 128), (128, 1));
        assert_eq!(fit(10, 5, 128), (128, 64));
        assert_eq!(fit(0, 0, 128), (0, 0));
        assert_eq!(fit(0, 100, 128), (0, 0));
        assert_eq!(fit(100, 100, 0), (0, 0));
        assert_eq!(fit(2, 1, u32::MAX), (MAX_THUMB_SIDE, MAX_THUMB_SIDE / 2));
    }

    #[test]
    fn thumbnails_average_colours_without_transparent_bleed() {
        // The left half transparent black, the right half opaque white.
        let mut image = RgbaImage::from_pixel(4, 2, Rgba([255, 255, 255, 255]));
        for (x, y) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            image.put_pixel(x, y, Rgba([0, 0, 0, 0]));
        }
        assert_eq!(thumbnail(&image, 1).as_raw(), &[255, 255, 255, 128]);
        let two = thumbnail(&image, 2);
        assert_eq!(two.as_raw(), &[0, 0, 0, 0, 255, 255, 255, 255]);
        let red = Rgba([200, 30, 30, 255]);
        let thumb = thumbnail(&RgbaImage::from_pixel(300, 200, red), 64);
        assert!(thumb.dimensions() == (64, 43) && thumb.pixels().all(|pixel| *pixel == red));
    }
}
