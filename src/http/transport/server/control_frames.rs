//! Counts the HTTP/2 control frames a client sends that the server must
//! answer (PING and SETTINGS without ACK). h2 answers one at a time and
//! stops reading until the answer is written, which bounds memory; a
//! client that reads its answers could still make the server answer at
//! line rate. This reads frame headers off the byte stream (after the
//! preface) and reports a client that sends more than the allowed number
//! in one second.

use std::time::{Duration, Instant};

const HEADER_LEN: usize = 9;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const ACK: u8 = 0x1;

pub struct ControlFrames {
    per_sec: u32,
    header: [u8; HEADER_LEN],
    header_len: usize,
    /// Payload bytes of the current frame still to skip.
    skip: usize,
    window_start: Instant,
    in_window: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub struct TooManyControlFrames;

impl ControlFrames {
    pub fn new(per_sec: u32) -> ControlFrames {
        ControlFrames {
            per_sec,
            header: [0; HEADER_LEN],
            header_len: 0,
            skip: 0,
            window_start: Instant::now(),
            in_window: 0,
        }
    }

    /// Feeds bytes read from the client after the connection preface.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), TooManyControlFrames> {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (HEADER_LEN - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len == HEADER_LEN {
                self.header_len = 0;
                let [l0, l1, l2, kind, flags, ..] = self.header;
                self.skip = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
                if matches!(kind, PING | SETTINGS) && flags & ACK == 0 {
                    self.count()?;
                }
            }
        }
        Ok(())
    }

    fn count(&mut self) -> Result<(), TooManyControlFrames> {
        if self.window_start.elapsed() >= Duration::from_secs(1) {
            self.window_start = Instant::now();
            self.in_window = 0;
        }
        self.in_window += 1;
        if self.in_window > self.per_sec {
            return Err(TooManyControlFrames);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn pings_and_settings_over_the_rate_are_reported_acks_and_data_are_not() {
        let mut bytes = Vec::new();
        for _ in 0..10 {
            bytes.extend(frame(PING, 0, &[7; 8]));
            bytes.extend(frame(PING, ACK, &[7; 8]));
            bytes.extend(frame(SETTINGS, ACK, &[]));
            // A DATA frame whose payload looks like PING headers.
            bytes.extend(frame(0x0, 0, &frame(PING, 0, &[0; 8])));
        }
        bytes.extend(frame(SETTINGS, 0, &[0, 3, 0, 0, 0, 100]));
        let mut counter = ControlFrames::new(11);
        // Fed one byte at a time: frame headers split across reads.
        for b in &bytes {
            counter.feed(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(counter.in_window, 11);
        assert_eq!(
            counter.feed(&frame(PING, 0, &[0; 8])),
            Err(TooManyControlFrames)
        );
    }
}
