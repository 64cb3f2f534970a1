//! The S3 XML documents the director answers with, written by hand: they are few, flat
//! and output-only, so a small escaping writer does what an XML crate would.

use std::fmt::Write;

pub const S3_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Escapes text for XML element content.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all are written as character references
            // S3 clients decode; anything else passes through.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// An XML document under construction.
pub struct Doc(String);

impl Doc {
    /// Starts a document whose root element is `root` in the S3 namespace.
    pub fn new(root: &str) -> Doc {
        Doc(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{S3_NS}\">"
        ))
    }

    /// Starts a document without a namespace (S3 `<Error>`).
    pub fn bare(root: &str) -> Doc {
        Doc(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root}>"
        ))
    }

    pub fn open(&mut self, tag: &str) -> &mut Doc {
        let _ = write!(self.0, "<{tag}>");
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Doc {
        let _ = write!(self.0, "</{tag}>");
        self
    }

    /// `<tag>escaped text</tag>`
    pub fn elem(&mut self, tag: &str, text: &str) -> &mut Doc {
        let _ = write!(self.0, "<{tag}>{}</{tag}>", escape(text));
        self
    }

    pub fn finish(mut self, root: &str) -> String {
        let _ = write!(self.0, "</{root}>");
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_documents() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("x\u{1}y"), "x&#x1;y");
        let mut d = Doc::bare("Error");
        d.elem("Code", "NoSuchKey").elem("Message", "no <key>");
        assert_eq!(
            d.finish("Error"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>no &lt;key&gt;</Message></Error>"
        );
    }
}
