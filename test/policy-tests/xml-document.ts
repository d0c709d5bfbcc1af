/**
 * A strict reader of the XML a JUnit report is made of (declaration, elements, attributes, text, character and the
 * five predefined entity references; no DTD, comments or CDATA): enough to say a report is well-formed and to read
 * its counts, without a dependency. Anything it does not understand is an error, never skipped.
 */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = '[A-Za-z_][A-Za-z0-9._:-]*';
const REFERENCE = /&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);/g;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export class XmlError extends Error {}

function decode(raw: string, at: number): string {
  if (raw.replace(REFERENCE, '').includes('&')) throw new XmlError(`a bare & at ${at}`);
  return raw.replace(REFERENCE, (ref) => {
    const body = ref.slice(1, -1);
    if (body.startsWith('#x')) return String.fromCodePoint(Number.parseInt(body.slice(2), 16));
    if (body.startsWith('#')) return String.fromCodePoint(Number(body.slice(1)));
    return ENTITIES[body] as string;
  });
}

/** The root element of `text`; throws XmlError when the document is not well-formed. */
export function parseXml(text: string): XmlElement {
  let pos = 0;
  const declaration = /^<\?xml\s+version="1\.0"(?:\s+encoding="UTF-8")?\s*\?>\s*/.exec(text);
  if (declaration) pos = declaration[0].length;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const tag = new RegExp(`<(/?)(${NAME})((?:\\s+${NAME}\\s*=\\s*(?:"[^"<]*"|'[^'<]*'))*)\\s*(/?)>`, 'y');
  const attribute = new RegExp(`(${NAME})\\s*=\\s*(?:"([^"<]*)"|'([^'<]*)')`, 'g');
  while (pos < text.length) {
    const lt = text.indexOf('<', pos);
    const chunk = text.slice(pos, lt === -1 ? text.length : lt);
    if (chunk.includes('>')) throw new XmlError(`a bare > at ${pos}`);
    const top = stack.at(-1);
    if (top) top.text += decode(chunk, pos);
    else if (chunk.trim() !== '') throw new XmlError(`text outside the root element at ${pos}`);
    if (lt === -1) break;
    tag.lastIndex = lt;
    const m = tag.exec(text);
    if (!m) throw new XmlError(`a malformed tag at ${lt}`);
    const [whole, closing, name, attrs, selfClosing] = m as unknown as [string, string, string, string, string];
    pos = lt + whole.length;
    if (closing) {
      if (attrs.trim() !== '' || selfClosing) throw new XmlError(`a malformed end tag at ${lt}`);
      const open = stack.pop();
      if (open?.name !== name) throw new XmlError(`</${name}> closes <${open?.name ?? 'nothing'}> at ${lt}`);
      continue;
    }
    const element: XmlElement = { name, attributes: {}, children: [], text: '' };
    for (const a of attrs.matchAll(attribute)) {
      const key = a[1] as string;
      if (Object.hasOwn(element.attributes, key)) throw new XmlError(`attribute ${key} twice at ${lt}`);
      element.attributes[key] = decode(a[2] ?? a[3] ?? '', lt);
    }
    if (stack.length === 0) {
      if (root) throw new XmlError(`a second root element at ${lt}`);
      root = element;
    } else {
      (stack.at(-1) as XmlElement).children.push(element);
    }
    if (!selfClosing) stack.push(element);
  }
  if (stack.length > 0) throw new XmlError(`<${(stack.at(-1) as XmlElement).name}> is never closed`);
  if (!root) throw new XmlError('no root element');
  return root;
}

/** Every element named `name` under `element`, depth first. */
export function findAll(element: XmlElement, name: string): XmlElement[] {
  return element.children.flatMap((c) => [...(c.name === name ? [c] : []), ...findAll(c, name)]);
}
