// Markdown → DOM, for model output. Every node is built with createElement and every
// piece of text goes in with textContent (or a Text node): nothing the model writes is
// ever parsed as HTML, so it cannot add elements, attributes or script. Links are kept
// only for http, https and mailto targets.
//
// Covers what chat replies use: paragraphs, headings, fenced and indented code, lists
// (nested by indentation), block quotes, rules, tables, and inline code, bold, italic,
// strikethrough, links and bare URLs. An unclosed fence (a reply still streaming) runs
// to the end of the text.

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_SEP = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;
const INDENTED = /^( {4}|\t)/;

export function render(text) {
  const fragment = document.createDocumentFragment();
  blocks(text.replace(/\r\n?/g, "\n").split("\n"), fragment);
  return fragment;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function blocks(lines, parent) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i++;
      continue;
    }
    let m;
    if ((m = FENCE.exec(line))) {
      const close = new RegExp(`^ {0,3}${m[1][0]}{${m[1].length},}\\s*$`);
      const body = [];
      i++;
      while (i < lines.length && !close.test(lines[i])) body.push(lines[i++]);
      i++; // the closing fence, when there is one
      parent.append(codeBlock(body.join("\n"), m[2]));
    } else if ((m = HEADING.exec(line))) {
      const h = el(`h${Math.min(m[1].length + 2, 6)}`);
      inline(m[2], h);
      parent.append(h);
      i++;
    } else if (RULE.test(line)) {
      parent.append(el("hr"));
      i++;
    } else if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
        inner.push(m[1]);
        i++;
      }
      const quote = el("blockquote");
      blocks(inner, quote);
      parent.append(quote);
    } else if (ITEM.test(line)) {
      i = list(lines, i, parent);
    } else if (line.includes("|") && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1])) {
      i = table(lines, i, parent);
    } else if (INDENTED.test(line)) {
      const body = [];
      while (i < lines.length && (INDENTED.test(lines[i]) || !lines[i].trim())) {
        body.push(lines[i].replace(INDENTED, ""));
        i++;
      }
      parent.append(codeBlock(body.join("\n").replace(/\n+$/, ""), ""));
    } else {
      const para = [];
      while (i < lines.length && lines[i].trim() && !startsBlock(lines, i)) para.push(lines[i++]);
      if (!para.length) para.push(lines[i++]); // a line no block rule took
      const p = el("p");
      para.forEach((text, k) => {
        if (k) p.append(el("br"));
        inline(text.trim(), p);
      });
      parent.append(p);
    }
  }
}

function startsBlock(lines, i) {
  const line = lines[i];
  return (
    FENCE.test(line) ||
    HEADING.test(line) ||
    RULE.test(line) ||
    QUOTE.test(line) ||
    ITEM.test(line) ||
    (line.includes("|") && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]))
  );
}

function indentOf(text) {
  return text.replace(/\t/g, "    ").length;
}

// A list from line i; items indented deeper than the list's own start nest inside them.
function list(lines, i, parent) {
  const first = ITEM.exec(lines[i]);
  const base = indentOf(first[1]);
  const ordered = /\d/.test(first[2]);
  const node = el(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) node.start = parseInt(first[2], 10);
  let item = null;
  let body = [];
  const flush = () => {
    if (!item) return;
    const [head, ...rest] = body;
    inline(head, item);
    if (rest.length) blocks(rest, item);
    node.append(item);
  };
  while (i < lines.length) {
    const line = lines[i];
    const m = ITEM.exec(line);
    if (m && indentOf(m[1]) <= base + 1) {
      if (/\d/.test(m[2]) !== ordered) break;
      flush();
      item = el("li");
      body = [m[3]];
    } else if (!line.trim()) {
      // A blank line ends the list unless the next line continues it.
      const next = lines[i + 1];
      if (next === undefined || (!ITEM.test(next) && !/^\s+\S/.test(next))) break;
      body.push("");
    } else if (/^\s+\S/.test(line) || (m && indentOf(m[1]) > base + 1)) {
      body.push(line.slice(Math.min(indentOf(line.match(/^\s*/)[0]), base + 2)));
    } else if (!startsBlock(lines, i)) {
      body[0] += " " + line.trim(); // a lazy continuation of the item's text
    } else {
      break;
    }
    i++;
  }
  flush();
  parent.append(node);
  return i;
}

function cells(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|")) row = row.slice(0, -1);
  return row.split("|").map((cell) => cell.trim());
}

function table(lines, i, parent) {
  const head = cells(lines[i]);
  const align = cells(lines[i + 1]).map((c) =>
    c.endsWith(":") ? (c.startsWith(":") ? "center" : "right") : c.startsWith(":") ? "left" : ""
  );
  const wrap = el("div", "table-wrap");
  const node = el("table");
  const row = (values, tag) => {
    const tr = el("tr");
    head.forEach((_, k) => {
      const cell = el(tag);
      if (align[k]) cell.style.textAlign = align[k];
      inline(values[k] ?? "", cell);
      tr.append(cell);
    });
    return tr;
  };
  const thead = el("thead");
  thead.append(row(head, "th"));
  const tbody = el("tbody");
  i += 2;
  while (i < lines.length && lines[i].includes("|") && lines[i].trim()) {
    tbody.append(row(cells(lines[i]), "td"));
    i++;
  }
  node.append(thead, tbody);
  wrap.append(node);
  parent.append(wrap);
  return i;
}

function codeBlock(code, lang) {
  const figure = el("figure", "code");
  const bar = el("figcaption");
  bar.append(el("span", "lang", lang || "code"));
  const copy = el("button", "copy", "Copy");
  copy.type = "button";
  copy.addEventListener("click", () => {
    const done = () => {
      copy.textContent = "Copied";
      setTimeout(() => (copy.textContent = "Copy"), 1500);
    };
    if (navigator.clipboard) navigator.clipboard.writeText(code).then(done, () => {});
  });
  bar.append(copy);
  const pre = el("pre");
  pre.append(el("code", null, code));
  figure.append(bar, pre);
  return figure;
}

// Inline spans. One pattern finds the earliest construct; the text before it is plain.
const INLINE = new RegExp(
  [
    /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/.source, // 1, 2: code
    /\*\*(?=\S)([\s\S]*?\S)\*\*/.source, // 3: bold
    /(?<![\w_])__(?=\S)([\s\S]*?\S)__(?![\w_])/.source, // 4: bold
    /\*(?=[^\s*])([\s\S]*?[^\s*])\*/.source, // 5: italic
    /(?<![\w_])_(?=[^\s_])([\s\S]*?[^\s_])_(?![\w_])/.source, // 6: italic
    /~~(?=\S)([\s\S]*?\S)~~/.source, // 7: strikethrough
    /\[([^\]\n]+)\]\(\s*<?((?:[^\s<>()]|\([^\s<>()]*\))+)>?(?:\s+"[^"]*")?\s*\)/.source, // 8, 9: link
    /(?<![\w/])(https?:\/\/[^\s<>"'`]*[^\s<>"'`.,:;!?)\]}])/.source, // 10: bare URL
  ].join("|")
);

export function inline(text, parent) {
  let rest = text;
  while (rest) {
    const m = INLINE.exec(rest);
    if (!m) {
      parent.append(document.createTextNode(rest));
      return;
    }
    if (m.index) parent.append(document.createTextNode(rest.slice(0, m.index)));
    if (m[2] !== undefined) {
      parent.append(el("code", null, m[2].length > 2 && /^ .* $/.test(m[2]) ? m[2].slice(1, -1) : m[2]));
    } else if (m[3] !== undefined || m[4] !== undefined) {
      const strong = el("strong");
      inline(m[3] ?? m[4], strong);
      parent.append(strong);
    } else if (m[5] !== undefined || m[6] !== undefined) {
      const em = el("em");
      inline(m[5] ?? m[6], em);
      parent.append(em);
    } else if (m[7] !== undefined) {
      const del = el("del");
      inline(m[7], del);
      parent.append(del);
    } else if (m[8] !== undefined) {
      parent.append(link(m[9], (node) => inline(m[8], node)));
    } else {
      parent.append(link(m[10], (node) => node.append(document.createTextNode(m[10]))));
    }
    rest = rest.slice(m.index + m[0].length);
  }
}

function safeHref(href) {
  try {
    const url = new URL(href, "http://invalid.invalid/");
    if (url.origin === "http://invalid.invalid") return null; // relative: not from a model
    return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

// `fill(node)` puts the label in; a link that is not kept shows as its label alone.
function link(href, fill) {
  const target = safeHref(href);
  if (target === null) {
    const span = el("span");
    fill(span);
    return span;
  }
  const a = el("a");
  a.href = target;
  a.target = "_blank";
  a.rel = "noopener noreferrer nofollow";
  fill(a);
  return a;
}
