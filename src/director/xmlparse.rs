//! A small, strict reader for the few XML documents S3 clients send (a
//! CompleteMultipartUpload body; small, flat, element-only). It builds a tree of elements
//! with their text and refuses anything it does not understand (DTDs, CDATA, unknown
//! entities, mismatched tags, text outside the root) rather than guessing. Attributes are
//! skipped (only `xmlns` ever appears); names keep their local part (`s3:Part` -> `Part`).

/// One element: its local name, child elements and its own text (entities decoded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// Children with this name.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the only child with this name; None if there is none or several.
    pub fn one_text<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let mut it = self.all(name);
        let first = it.next()?;
        it.next().is_none().then_some(first.text.trim())
    }
}

/// Deepest nesting accepted: S3 request documents are three levels deep.
const DEPTH_MAX: usize = 16;

/// Parses a whole document; the error says what is wrong and where (byte offset).
pub fn parse(doc: &str) -> Result<Element, String> {
    let mut p = Parser { s: doc, pos: 0 };
    p.skip_prolog()?;
    let root = p.element(0)?;
    p.skip_misc()?;
    if p.pos != p.s.len() {
        return Err(p.err("content after the root element"));
    }
    Ok(root)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    /// Skips up to and past `end`.
    fn skip_past(&mut self, end: &str) -> Result<(), String> {
        match self.rest().find(end) {
            Some(i) => {
                self.pos += i + end.len();
                Ok(())
            }
            None => Err(self.err(&format!("no closing {end}"))),
        }
    }

    /// Whitespace, comments and processing instructions.
    fn skip_misc(&mut self) -> Result<(), String> {
        loop {
            self.skip_ws();
            if self.rest().starts_with("<?") {
                self.skip_past("?>")?;
            } else if self.rest().starts_with("<!--") {
                self.skip_past("-->")?;
            } else {
                return Ok(());
            }
        }
    }

    fn skip_prolog(&mut self) -> Result<(), String> {
        if self.rest().starts_with('\u{feff}') {
            self.pos += '\u{feff}'.len_utf8();
        }
        self.skip_misc()?;
        if self.rest().starts_with("<!") {
            return Err(self.err("document type declarations are not accepted"));
        }
        Ok(())
    }

    fn name(&mut self) -> Result<String, String> {
        let r = self.rest();
        let n = r
            .find(|c: char| c.is_whitespace() || matches!(c, '>' | '/' | '='))
            .unwrap_or(r.len());
        if n == 0 {
            return Err(self.err("an element name is missing"));
        }
        let full = &r[..n];
        let local = full.rsplit(':').next().unwrap_or(full).to_string();
        self.pos += n;
        Ok(local)
    }

    /// Skips attributes up to `>` or `/>`; true if the element is empty (`/>`).
    fn attributes(&mut self) -> Result<bool, String> {
        loop {
            self.skip_ws();
            let r = self.rest();
            if r.starts_with("/>") {
                self.pos += 2;
                return Ok(true);
            }
            if r.starts_with('>') {
                self.pos += 1;
                return Ok(false);
            }
            self.name()?;
            self.skip_ws();
            if !self.rest().starts_with('=') {
                return Err(self.err("an attribute without a value"));
            }
            self.pos += 1;
            self.skip_ws();
            let q = self.rest().chars().next();
            match q {
                Some(q @ ('"' | '\'')) => {
                    self.pos += 1;
                    self.skip_past(&q.to_string())?;
                }
                _ => return Err(self.err("an attribute value without quotes")),
            }
        }
    }

    fn element(&mut self, depth: usize) -> Result<Element, String> {
        if depth > DEPTH_MAX {
            return Err(self.err("elements nested too deep"));
        }
        if !self.rest().starts_with('<') {
            return Err(self.err("an element was expected"));
        }
        self.pos += 1;
        let mut el = Element {
            name: self.name()?,
            ..Element::default()
        };
        if self.attributes()? {
            return Ok(el);
        }
        loop {
            let r = self.rest();
            if r.starts_with("</") {
                self.pos += 2;
                let close = self.name()?;
                self.skip_ws();
                if close != el.name || !self.rest().starts_with('>') {
                    return Err(self.err(&format!("</{close}> does not close <{}>", el.name)));
                }
                self.pos += 1;
                return Ok(el);
            } else if r.starts_with("<!--") {
                self.skip_past("-->")?;
            } else if r.starts_with("<!") || r.starts_with("<?") {
                return Err(self.err("CDATA and processing instructions are not accepted"));
            } else if r.starts_with('<') {
                el.children.push(self.element(depth + 1)?);
            } else if r.is_empty() {
                return Err(self.err(&format!("the document ends inside <{}>", el.name)));
            } else {
                let n = r.find('<').unwrap_or(r.len());
                let text = decode(&r[..n]).map_err(|e| self.err(&e))?;
                el.text.push_str(&text);
                self.pos += n;
            }
        }
    }
}

/// Decodes the five named entities and numeric character references.
fn decode(t: &str) -> Result<String, String> {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after.find(';').ok_or("an '&' without ';'")?;
        let ent = &after[..end];
        let c = match ent {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(h) = ent.strip_prefix("#x") {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = ent.strip_prefix('#') {
                    d.parse::<u32>().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity &{ent};"))?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_document_as_botocore_sends_it() {
        let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part><ETag>&quot;abc&quot;</ETag><PartNumber>1</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>\n  <Part><ETag>\"d\"</ETag><PartNumber>2</PartNumber></Part><!-- c --></CompleteMultipartUpload>\n";
        let r = parse(doc).unwrap();
        assert_eq!(r.name, "CompleteMultipartUpload");
        let parts: Vec<_> = r.all("Part").collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].one_text("ETag"), Some("\"abc\""));
        assert_eq!(parts[1].one_text("PartNumber"), Some("2"));
        assert_eq!(parts[0].one_text("Missing"), None);
        let e = parse("<a><b/><c x='1'>&#x41;&#66;</c></a>").unwrap();
        assert_eq!(e.children[1].text, "AB");
        assert_eq!(
            parse("<s3:a><s3:b>x</s3:b></s3:a>").unwrap().children[0].name,
            "b"
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "<a>x</a>y",
            "<a>&nbsp;</a>",
            "<a>&amp</a>",
            "<!DOCTYPE a><a/>",
            "<a><![CDATA[x]]></a>",
            "<a b></a>",
            "<a b=1></a>",
            "text",
            "<a/><b/>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert!(parse(&deep).is_err());
    }
}
