//! Audio files, told by their first bytes: a chat message's voice recording is stored only when
//! it is one of the formats below, so an agent cannot file any other file as "audio".

/// What an audio file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFormat {
    pub name: &'static str,
    pub mime: &'static str,
    pub extension: &'static str,
}

/// The format of `bytes`, or `None` when they do not start like WAV, MP3, OGG, FLAC, M4A or
/// WebM audio.
pub fn sniff(bytes: &[u8]) -> Option<AudioFormat> {
    let format = |name, mime, extension| {
        Some(AudioFormat {
            name,
            mime,
            extension,
        })
    };
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"RIFF") && at(8, b"WAVE") {
        format("wav", "audio/wav", "wav")
    } else if at(0, b"fLaC") {
        format("flac", "audio/flac", "flac")
    } else if at(0, b"OggS") {
        format("ogg", "audio/ogg", "ogg")
    } else if at(4, b"ftypM4A") || at(4, b"ftypmp42") || at(4, b"ftypisom") {
        format("m4a", "audio/mp4", "m4a")
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        format("webm", "audio/webm", "webm")
    } else if at(0, b"ID3") || is_mpeg_frame(bytes) {
        format("mp3", "audio/mpeg", "mp3")
    } else {
        None
    }
}

/// An MPEG audio frame header: 11 sync bits, a valid version, layer III, a bitrate index and a
/// sample rate index that are not reserved.
fn is_mpeg_frame(bytes: &[u8]) -> bool {
    let [first, second, third, ..] = bytes else {
        return false;
    };
    *first == 0xFF
        && second & 0xE0 == 0xE0
        && (second >> 3) & 0b11 != 0b01
        && (second >> 1) & 0b11 == 0b01
        && third >> 4 != 0b1111
        && (third >> 2) & 0b11 != 0b11
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_is_told_by_its_first_bytes() {
        let check = |bytes: &[u8], expected: Option<&str>| {
            assert_eq!(
                sniff(bytes).map(|format| format.name),
                expected,
                "{bytes:?}"
            );
        };
        check(b"RIFF\x24\x00\x00\x00WAVEfmt ", Some("wav"));
        check(b"fLaC\x00\x00\x00\x22", Some("flac"));
        check(b"OggS\x00\x02", Some("ogg"));
        check(b"\x00\x00\x00\x20ftypM4A \x00", Some("m4a"));
        check(b"ID3\x04\x00", Some("mp3"));
        check(&[0xFF, 0xFB, 0x90, 0x64], Some("mp3"));
        check(&[0x1A, 0x45, 0xDF, 0xA3, 0x01], Some("webm"));
        check(b"RIFF\x24\x00\x00\x00AVI LIST", None);
        check(b"\x89PNG\r\n\x1a\n", None);
        check(b"-----BEGIN OPENSSH PRIVATE KEY-----", None);
        check(&[0xFF, 0xFF, 0xFF], None);
        check(b"", None);
    }
}
