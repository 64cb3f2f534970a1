//! The S3 XML documents the director answers with, written by hand: they are few and
//! flat, so a small escaping writer does what an XML crate would. The few documents
//! clients send (DeleteObjects, CompleteMultipartUpload, ACLs) are read by `parse`: a strict
//! reader of plain element trees (no DTDs, no entities beyond XML's five and character
//! references), bounded in depth.

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

    /// `<tag a="v" ...>` (attribute values escaped).
    pub fn open_attrs(&mut self, tag: &str, attrs: &[(&str, &str)]) -> &mut Doc {
        let _ = write!(self.0, "<{tag}");
        for (k, v) in attrs {
            let _ = write!(self.0, " {k}=\"{}\"", escape(v));
        }
        self.0.push('>');
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

    /// Closes the root element; the document ends with a newline, as curl users expect.
    pub fn finish(mut self, root: &str) -> String {
        let _ = writeln!(self.0, "</{root}>");
        self.0
    }
}

/// One element of a parsed document: local name (namespace prefix dropped), child
/// elements in order, and its text (the concatenation of its text nodes, decoded).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the only child named `name`; None if there is none or several.
    pub fn one_text<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let mut it = self.all(name);
        let first = it.next()?;
        it.next().is_none().then_some(first.text.trim())
    }

    /// The trimmed text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

/// Deepest nesting `parse` accepts: S3's request documents are three or four levels deep.
const DEPTH_MAX: usize = 16;

/// Parses a small XML document into its root element.
pub fn parse(doc: &str) -> Result<Element, String> {
    let mut p = Parser { s: doc, i: 0 };
    p.skip_misc()?;
    let root = p.element(0)?;
    p.skip_misc()?;
    if p.i != p.s.len() {
        return Err(format!("text after the root element at byte {}", p.i));
    }
    Ok(root)
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.i += r.len() - r.trim_start().len();
    }

    /// Whitespace, the XML declaration, processing instructions and comments.
    fn skip_misc(&mut self) -> Result<(), String> {
        loop {
            self.skip_ws();
            if self.rest().starts_with("<?") {
                self.skip_past("?>")?;
            } else if self.rest().starts_with("<!--") {
                self.skip_past("-->")?;
            } else if self.rest().starts_with("<!") {
                return Err("DTDs are not accepted".into());
            } else {
                return Ok(());
            }
        }
    }

    fn skip_past(&mut self, end: &str) -> Result<(), String> {
        match self.rest().find(end) {
            Some(n) => {
                self.i += n + end.len();
                Ok(())
            }
            None => Err(format!("unterminated construct (no {end:?})")),
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let r = self.rest();
        let n = r
            .find(|c: char| c.is_whitespace() || matches!(c, '>' | '/' | '='))
            .unwrap_or(r.len());
        if n == 0 {
            return Err(format!("expected a name at byte {}", self.i));
        }
        self.i += n;
        Ok(r[..n].to_string())
    }

    fn element(&mut self, depth: usize) -> Result<Element, String> {
        if depth >= DEPTH_MAX {
            return Err("the document is nested too deeply".into());
        }
        if !self.rest().starts_with('<') {
            return Err(format!("expected an element at byte {}", self.i));
        }
        self.i += 1;
        let qname = self.name()?;
        let local = qname.rsplit(':').next().unwrap_or(&qname).to_string();
        // Attributes (namespaces and the like) are read and dropped.
        loop {
            self.skip_ws();
            let r = self.rest();
            if r.starts_with("/>") {
                self.i += 2;
                return Ok(Element {
                    name: local,
                    ..Element::default()
                });
            }
            if r.starts_with('>') {
                self.i += 1;
                break;
            }
            self.name()?;
            self.skip_ws();
            if !self.rest().starts_with('=') {
                return Err(format!("expected '=' at byte {}", self.i));
            }
            self.i += 1;
            self.skip_ws();
            let quote = match self.rest().chars().next() {
                Some(q @ ('"' | '\'')) => q,
                _ => return Err(format!("expected a quoted value at byte {}", self.i)),
            };
            self.i += 1;
            match self.rest().find(quote) {
                Some(n) => self.i += n + 1,
                None => return Err("unterminated attribute value".into()),
            }
        }
        let mut el = Element {
            name: local,
            ..Element::default()
        };
        loop {
            let r = self.rest();
            let n = r
                .find('<')
                .ok_or_else(|| format!("<{qname}> is not closed"))?;
            el.text.push_str(&unescape(&r[..n])?);
            self.i += n;
            let r = self.rest();
            if r.starts_with("</") {
                self.i += 2;
                let close = self.name()?;
                if close != qname {
                    return Err(format!("<{qname}> closed by </{close}>"));
                }
                self.skip_ws();
                if !self.rest().starts_with('>') {
                    return Err(format!("expected '>' at byte {}", self.i));
                }
                self.i += 1;
                return Ok(el);
            } else if r.starts_with("<!--") {
                self.skip_past("-->")?;
            } else if let Some(c) = r.strip_prefix("<![CDATA[") {
                let n = c.find("]]>").ok_or("unterminated CDATA section")?;
                el.text.push_str(&c[..n]);
                self.i += "<![CDATA[".len() + n + 3;
            } else {
                el.children.push(self.element(depth + 1)?);
            }
        }
    }
}

/// Decodes XML's five entities and character references.
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';').ok_or("an '&' without ';'")?;
        let ent = &after[..semi];
        let c = match ent {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = ent.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = ent.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity &{ent};"))?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
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
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>no &lt;key&gt;</Message></Error>\n"
        );
    }

    #[test]
    fn parses_request_documents() {
        let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n <Quiet>true</Quiet>\n <Object><Key>a &amp; b&#x2F;&#233;</Key></Object><!-- c -->\n <Object><Key><![CDATA[<x>]]></Key><VersionId/></Object>\n</Delete>";
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Delete");
        assert_eq!(root.child_text("Quiet"), Some("true"));
        let keys: Vec<_> = root
            .all("Object")
            .map(|o| o.child_text("Key").unwrap().to_string())
            .collect();
        assert_eq!(keys, ["a & b/é", "<x>"]);
        let ns = parse("<s3:A xmlns:s3='u'><s3:B>1</s3:B></s3:A>").unwrap();
        assert_eq!(ns.child_text("B"), Some("1"));
    }

    #[test]
    fn refuses_malformed_documents() {
        for bad in [
            "",
            "<A>",
            "<A></B>",
            "<A>&bogus;</A>",
            "<A>& b</A>",
            "<A/><B/>",
            "<!DOCTYPE x [<!ENTITY e 'x'>]><A>&e;</A>",
            "<A x=1/>",
            "text",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        let deep = "<A>".repeat(40) + &"</A>".repeat(40);
        assert!(parse(&deep).is_err());
    }
}
