use std::io::Read;
use std::io::Result as IoResult;
use std::sync::mpsc::channel;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use crate::request::BodyState;

/// A `Reader` that reads exactly the number of bytes from a sub-reader.
///
/// If the limit is reached, it returns EOF. If the limit is not reached
/// when the destructor is called, the remaining bytes will be read and
/// thrown away.
pub struct EqualReader<R>
where
    R: Read,
{
    reader: R,
    // dpyfs: u64, so that a body of 4 GiB or more is read whole on 32-bit boards.
    size: u64,
    last_read_signal: Sender<IoResult<()>>,
    // dpyfs: told when the body is read to its end; says whether the connection closes.
    state: Arc<BodyState>,
}

impl<R> EqualReader<R>
where
    R: Read,
{
    pub(crate) fn new(
        reader: R,
        size: u64,
        state: Arc<BodyState>,
    ) -> (EqualReader<R>, Receiver<IoResult<()>>) {
        let (tx, rx) = channel();

        if size == 0 {
            state.mark_read_to_end();
        }
        let r = EqualReader {
            reader,
            size,
            last_read_signal: tx,
            state,
        };

        (r, rx)
    }
}

impl<R> Read for EqualReader<R>
where
    R: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if self.size == 0 {
            return Ok(0);
        }

        let buf = if (buf.len() as u64) < self.size {
            buf
        } else {
            &mut buf[..self.size as usize]
        };

        match self.reader.read(buf) {
            Ok(len) => {
                self.size -= len as u64;
                if self.size == 0 {
                    self.state.mark_read_to_end();
                }
                Ok(len)
            }
            err @ Err(_) => err,
        }
    }
}

impl<R> Drop for EqualReader<R>
where
    R: Read,
{
    fn drop(&mut self) {
        // dpyfs: drain through a fixed buffer. Upstream allocated the whole declared
        // remainder (`vec![0; remaining]`), so a request that announced a huge
        // Content-Length and stopped early aborted the process (tiny-http PR #290).
        // dpyfs: and not at all when the connection closes instead (request.rs): draining
        // here held a handler thread for as long as a slow client liked.
        if self.state.closing() {
            return;
        }
        let mut remaining_to_read = self.size;
        let mut buf = [0u8; 16 * 1024];

        while remaining_to_read > 0 {
            let want = remaining_to_read.min(buf.len() as u64) as usize;
            match self.reader.read(&mut buf[..want]) {
                Err(e) => {
                    self.last_read_signal.send(Err(e)).ok();
                    break;
                }
                Ok(0) => {
                    self.last_read_signal.send(Ok(())).ok();
                    break;
                }
                Ok(other) => {
                    remaining_to_read -= other as u64;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EqualReader;
    use std::io::Read;

    #[test]
    fn test_limit() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let (mut equal_reader, _) =
                EqualReader::new(org_reader.by_ref(), 5, Default::default());

            let mut string = String::new();
            equal_reader.read_to_string(&mut string).unwrap();
            assert_eq!(string, "hello");
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }

    #[test]
    fn test_not_enough() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let (mut equal_reader, _) =
                EqualReader::new(org_reader.by_ref(), 5, Default::default());

            let mut vec = [0];
            equal_reader.read_exact(&mut vec).unwrap();
            assert_eq!(vec[0], b'h');
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }
}
